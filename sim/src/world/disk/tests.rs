//! SimDisk tests: each fault shown on a madsim runtime with the plugin registered.
