//! Message rules (turmoil's packet rules, at the level of whole messages): while a
//! `message-rule` fault lasts, every frame from one node to another whose kind it names is
//! dropped (the connection stays open: the sender's request times out, or its answer never
//! comes), delivered late (after the frames sent behind it), or delivered twice. The
//! receiving end of a connection asks here before handing a frame to its owner. Only the
//! nemesis adds and removes rules.

use std::sync::Mutex;
use std::time::Duration;

/// What happens to a matching frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageAction {
    Drop,
    /// Handed over after this long; later frames overtake it.
    Delay(Duration),
    Duplicate,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Active {
    from: String,
    to: String,
    /// Message kinds (`kafkasim::protocol::MESSAGE_KINDS`); empty: every message.
    kinds: Vec<String>,
    action: MessageAction,
}

/// The live rules, oldest first; the oldest matching rule decides.
#[derive(Debug, Default)]
pub struct MessageRules {
    rules: Mutex<Vec<Active>>,
}

impl MessageRules {
    /// Starts a rule on frames `from` -> `to` of `kinds` (empty: every kind).
    pub fn add(&self, from: &str, to: &str, kinds: &[String], action: MessageAction) {
        let rule =
            Active { from: from.to_string(), to: to.to_string(), kinds: kinds.to_vec(), action };
        self.lock().push(rule);
    }

    /// Ends one rule added with these arguments (of two identical ones, the other stays).
    pub fn remove(&self, from: &str, to: &str, kinds: &[String], action: MessageAction) {
        let mut rules = self.lock();
        let same =
            |r: &Active| r.from == from && r.to == to && r.kinds == kinds && r.action == action;
        if let Some(at) = rules.iter().position(same) {
            rules.remove(at);
        }
    }

    /// Ends every rule (the heal).
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// What to do with a frame of `kind` from `from` to `to` (None: deliver it).
    pub fn action(&self, from: &str, to: &str, kind: &str) -> Option<MessageAction> {
        let rules = self.lock();
        let matches = |rule: &&Active| {
            rule.from == from
                && rule.to == to
                && (rule.kinds.is_empty() || rule.kinds.iter().any(|k| k == kind))
        };
        rules.iter().find(matches).map(|rule| rule.action)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Active>> {
        self.rules.lock().expect("message rules lock is never poisoned: a panic ends the run")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_matching_rule_decides_until_removed() {
        let rules = MessageRules::default();
        let fetch = ["fetch-response".to_string()];
        let delay = MessageAction::Delay(Duration::from_millis(5));
        rules.add("broker-0", "broker-1", &fetch, MessageAction::Drop);
        rules.add("broker-0", "broker-1", &[], delay);
        assert_eq!(
            rules.action("broker-0", "broker-1", "fetch-response"),
            Some(MessageAction::Drop)
        );
        assert_eq!(rules.action("broker-0", "broker-1", "produce"), Some(delay));
        assert_eq!(rules.action("broker-1", "broker-0", "fetch-response"), None, "one direction");
        rules.remove("broker-0", "broker-1", &fetch, MessageAction::Drop);
        assert_eq!(rules.action("broker-0", "broker-1", "fetch-response"), Some(delay));
        rules.clear();
        assert_eq!(rules.action("broker-0", "broker-1", "produce"), None);
    }
}
