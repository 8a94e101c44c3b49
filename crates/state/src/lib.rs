//! Seisan authenticated state over sled (skeleton).
