//! Progress of a node that is behind the chain: how fast it commits the finalized blocks
//! it fetches, how far it still has to go, and when it got there. Pure: the runtime
//! feeds it the time and heights it already has, and logs and publishes what it says
//! (`/v1/status`'s `catch_up`, the "catching up" and "caught up" log lines).

use std::collections::VecDeque;

/// The rate is measured over the last this many milliseconds of samples.
pub const RATE_WINDOW_MS: u64 = 10_000;
/// Samples are taken at most this often (the runtime observes on every tick).
const SAMPLE_INTERVAL_MS: u64 = 250;
/// A rate is reported only over at least this long a span, so one burst is not a rate.
const MIN_RATE_SPAN_MS: u64 = 1_000;

/// Where a catch-up stands, as `/v1/status` shows it.
pub use seisan_api::v1::CatchUpProgress as Progress;

/// A finished catch-up, for the "caught up" log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaughtUp {
    /// Blocks committed from the moment the node saw it was behind.
    pub blocks: u64,
    pub elapsed_ms: u64,
}

impl CaughtUp {
    /// The average rate of the whole catch-up.
    pub fn blocks_per_second(&self) -> f64 {
        self.blocks as f64 * 1000.0 / self.elapsed_ms.max(1) as f64
    }
}

/// One node's catch-up tracker.
#[derive(Clone, Debug, Default)]
pub struct CatchUp {
    /// When and at what height the node first saw itself behind.
    start: Option<(u64, u64)>,
    /// (time, committed height), oldest first, one per [`SAMPLE_INTERVAL_MS`] at most,
    /// none older than [`RATE_WINDOW_MS`] but the first.
    samples: VecDeque<(u64, u64)>,
    /// The last observation.
    latest: (u64, u64),
    target: u64,
}

impl CatchUp {
    /// Records the committed `height` and the best known finalized `target` at `now_ms`.
    /// Returns the finished catch-up when this observation is the first in step with
    /// the chain after being behind.
    pub fn observe(&mut self, now_ms: u64, height: u64, target: u64) -> Option<CaughtUp> {
        if height >= target {
            let (started_ms, started_height) = self.start.take()?;
            self.samples.clear();
            return Some(CaughtUp {
                blocks: height.saturating_sub(started_height),
                elapsed_ms: now_ms.saturating_sub(started_ms),
            });
        }
        self.start.get_or_insert((now_ms, height));
        self.target = target;
        self.latest = (now_ms, height);
        let due = self
            .samples
            .back()
            .is_none_or(|&(at, _)| now_ms.saturating_sub(at) >= SAMPLE_INTERVAL_MS);
        if due {
            self.samples.push_back((now_ms, height));
        }
        while self.samples.len() > 1
            && self
                .samples
                .front()
                .is_some_and(|&(at, _)| now_ms.saturating_sub(at) > RATE_WINDOW_MS)
        {
            self.samples.pop_front();
        }
        None
    }

    /// Where the catch-up stands; `None` while the node is in step with the chain.
    pub fn progress(&self) -> Option<Progress> {
        self.start?;
        let (last_ms, height) = self.latest;
        let &(first_ms, first_height) = self.samples.front()?;
        let remaining = self.target.saturating_sub(height);
        let span_ms = last_ms.saturating_sub(first_ms);
        let blocks_per_second = (span_ms >= MIN_RATE_SPAN_MS)
            .then(|| height.saturating_sub(first_height) as f64 * 1000.0 / span_ms as f64);
        let eta_seconds = blocks_per_second
            .filter(|rate| *rate > 0.0)
            .map(|rate| (remaining as f64 / rate).ceil() as u64);
        Some(Progress {
            height,
            target: self.target,
            remaining,
            blocks_per_second,
            eta_seconds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_step_there_is_nothing_to_show_or_report() {
        let mut tracker = CatchUp::default();
        assert_eq!(tracker.observe(0, 10, 10), None);
        assert_eq!(tracker.progress(), None);
    }

    #[test]
    fn a_catch_up_shows_its_rate_and_what_is_left_then_reports_its_end() {
        let mut tracker = CatchUp::default();
        // Behind by 1,000 at t = 0; 200 blocks a second from then on.
        assert_eq!(tracker.observe(0, 0, 1_000), None);
        let first = tracker.progress().unwrap();
        assert_eq!((first.height, first.remaining), (0, 1_000));
        assert_eq!(first.blocks_per_second, None, "no rate from one sample");
        for second in 1..=3u64 {
            assert_eq!(tracker.observe(second * 1000, second * 200, 1_000), None);
        }
        let now = tracker.progress().unwrap();
        assert_eq!((now.height, now.target, now.remaining), (600, 1_000, 400));
        assert_eq!(now.blocks_per_second, Some(200.0));
        assert_eq!(now.eta_seconds, Some(2));
        // The chain moved on meanwhile: the target follows.
        tracker.observe(4_000, 800, 1_100);
        assert_eq!(tracker.progress().unwrap().remaining, 300);
        let done = tracker.observe(5_500, 1_100, 1_100).unwrap();
        assert_eq!(
            done,
            CaughtUp {
                blocks: 1_100,
                elapsed_ms: 5_500
            }
        );
        assert_eq!(done.blocks_per_second(), 200.0);
        assert_eq!(tracker.progress(), None);
        assert_eq!(tracker.observe(6_000, 1_101, 1_101), None, "reported once");
    }

    #[test]
    fn the_rate_is_over_the_last_window_and_a_stall_shows_as_no_eta() {
        let mut tracker = CatchUp::default();
        // Fast for 20 s (100/s), then stalled for 11 s: the window holds only the stall.
        for second in 0..=20u64 {
            tracker.observe(second * 1000, second * 100, 10_000);
        }
        assert_eq!(tracker.progress().unwrap().blocks_per_second, Some(100.0));
        for second in 21..=31u64 {
            tracker.observe(second * 1000, 2_000, 10_000);
        }
        let stalled = tracker.progress().unwrap();
        assert_eq!(stalled.height, 2_000);
        assert_eq!(stalled.blocks_per_second, Some(0.0));
        assert_eq!(stalled.eta_seconds, None);
    }
}
