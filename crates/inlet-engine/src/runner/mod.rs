//! Runners: how an action is carried out (a local command, an HTTP request).
