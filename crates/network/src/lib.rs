//! Seisan networking over libp2p (skeleton; see issue 4).
