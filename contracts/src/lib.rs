//! Seisan clearing contracts (skeleton; see issue 5).
