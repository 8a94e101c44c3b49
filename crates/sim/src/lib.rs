//! Seisan's seeded consensus fault simulator (skeleton; see issue 3).
