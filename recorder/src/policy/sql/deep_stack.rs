//! A few threads with deep stacks, where the policy check parses, walks and drops the
//! trees of long statements.
//!
//! A session's task runs on a tokio worker with a small stack, shared by every session
//! on that worker: a stack overflow there aborts the whole gateway, not one session.
//! Statements small enough that their trees are shallow (`budget::SHALLOW_BYTES`) are
//! checked in place; every other one is handed to these threads, whose stacks hold a
//! tree of `budget::MAX_OPERATORS` levels with room to spare. The stacks are reserved
//! address space, committed only as deep as a statement actually goes.
//!
//! A panic in a check (a parser bug on some input) is caught here and returned as an
//! error, so it ends no session: the statement is then treated as one the gateway
//! cannot read.

use std::panic::AssertUnwindSafe;
use std::sync::{Mutex, OnceLock, mpsc};

/// Bytes of stack each thread reserves.
const STACK_BYTES: usize = 1 << 30;

type Job = Box<dyn FnOnce() + Send>;

struct Pool {
    jobs: Mutex<mpsc::Sender<Job>>,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = std::sync::Arc::new(Mutex::new(rx));
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .max(2);
        for i in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("tapline-sql-{i}"))
                .stack_size(STACK_BYTES)
                .spawn(move || {
                    loop {
                        let job = match rx.lock().unwrap_or_else(|e| e.into_inner()).recv() {
                            Ok(job) => job,
                            Err(_) => return,
                        };
                        job();
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a policy check thread");
            }
        }
        Pool {
            jobs: Mutex::new(tx),
        }
    })
}

/// The check panicked; the panic itself is logged by the gateway's hook.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the policy check failed internally on this statement")]
pub struct CheckPanicked;

/// Queues `f`; `reply` gets its outcome on the deep-stack thread.
fn submit<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
    reply: impl FnOnce(Result<T, CheckPanicked>) + Send + 'static,
) {
    let job: Job = Box::new(move || {
        let out = std::panic::catch_unwind(AssertUnwindSafe(f)).map_err(|_| CheckPanicked);
        reply(out);
    });
    let sent = pool()
        .jobs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send(job);
    if let Err(mpsc::SendError(job)) = sent {
        // No thread to run it (they could not be started): run it here rather than
        // not at all; the caller's budget keeps it bounded.
        job();
    }
}

/// Runs `f` on a deep stack and waits for it without blocking the task's thread.
pub async fn run<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, CheckPanicked> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    submit(f, move |out| {
        let _ = tx.send(out);
    });
    rx.await.unwrap_or(Err(CheckPanicked))
}

/// Runs `f` on a deep stack from synchronous code, blocking until it is done (for a
/// rare check deep inside a message handler, such as planning a COPY's masking).
pub fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, CheckPanicked> {
    let (tx, rx) = std::sync::mpsc::channel();
    submit(f, move |out| {
        let _ = tx.send(out);
    });
    let wait = || rx.recv().unwrap_or(Err(CheckPanicked));
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(wait)
        }
        _ => wait(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_runs_on_the_deep_stack_and_a_panic_comes_back_as_an_error() {
        let name = run(|| std::thread::current().name().map(str::to_string))
            .await
            .unwrap();
        assert!(name.unwrap_or_default().starts_with("tapline-sql-"));
        let boom: Result<(), _> = run(|| panic!("parser bug")).await;
        assert_eq!(boom, Err(CheckPanicked));
        assert_eq!(run_blocking(|| 41 + 1), Ok(42));
    }
}
