//! The shell's clock: the one place the watchers read the time, which they hand to
//! their pure planners (`seisan_watch::Millis`).

use seisan_watch::Millis;

/// Milliseconds since the Unix epoch by the system clock (0 if it reads before it).
pub fn wall_clock() -> Millis {
    Millis(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis() as u64),
    )
}
