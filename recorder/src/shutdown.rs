//! Graceful shutdown, told to every task through one watch channel.
//!
//! `Draining` means "accept nothing new, let live sessions finish"; `Terminating`
//! means "the grace period is over: close now, seal what you have".

use tokio::sync::watch;

/// The phases of a gateway's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Running,
    Draining,
    Terminating,
}

/// A receiver every task holds.
#[derive(Debug, Clone)]
pub struct Shutdown {
    rx: watch::Receiver<Phase>,
}

/// The sender the gateway holds.
#[derive(Debug)]
pub struct ShutdownTrigger {
    tx: watch::Sender<Phase>,
}

/// A new channel, in the Running phase.
pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(Phase::Running);
    (ShutdownTrigger { tx }, Shutdown { rx })
}

impl ShutdownTrigger {
    /// Moves every task to a later phase.
    pub fn set(&self, phase: Phase) {
        self.tx.send_if_modified(|p| {
            if phase > *p {
                *p = phase;
                true
            } else {
                false
            }
        });
    }
}

impl Shutdown {
    /// Resolves once the phase is at least `phase`.
    pub async fn reached(&mut self, phase: Phase) {
        let _ = self.rx.wait_for(|p| *p >= phase).await;
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        *self.rx.borrow()
    }
}
