//! Model-based tests of the partition log.
