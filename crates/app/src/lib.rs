//! Composition root: configuration, wiring and the `user-settings` binary.
