//! Seisan consensus: a pure Simplex state machine (skeleton; see issue 3).
