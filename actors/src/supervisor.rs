//! Making supervision real.
//!
//! actix's `Supervisor` restarts an actor when it *stops*; a panic inside a handler would
//! instead unwind the whole arbiter thread and every actor on it. So handlers run their bodies
//! through [`guard`]: a panic is caught and logged, and the actor is stopped — which makes its
//! supervisor restart it — instead of taking its neighbours down. Gateway sessions, which are
//! not restarted, close their one connection with 4000 instead (see `session`).

use std::panic::{catch_unwind, AssertUnwindSafe};

use actix::{Actor, ActorContext};

/// A handler body panicked; the panic message has been logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure;

/// Runs `body`, turning a panic into a logged [`Failure`].
pub fn catch_failure<R>(actor: &'static str, body: impl FnOnce() -> R) -> Result<R, Failure> {
    catch_unwind(AssertUnwindSafe(body)).map_err(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::error!(actor, %message, "actor failed; stopping it");
        Failure
    })
}

/// Runs a handler body of a supervised actor; on a panic the actor stops, so its supervisor
/// restarts it, and `None` is returned.
pub fn guard<A, C, R>(actor: &'static str, ctx: &mut C, body: impl FnOnce(&mut C) -> R) -> Option<R>
where
    A: Actor<Context = C>,
    C: ActorContext,
{
    match catch_failure(actor, || body(ctx)) {
        Ok(value) => Some(value),
        Err(Failure) => {
            ctx.stop();
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix::{Context, Handler, Message, Supervised, Supervisor};

    /// A counter that fails when asked to, to show what a failure does to it and its neighbours.
    #[derive(Default)]
    struct Counter {
        count: u32,
        restarts: u32,
    }

    impl Actor for Counter {
        type Context = Context<Self>;
    }

    impl Supervised for Counter {
        fn restarting(&mut self, _: &mut Context<Self>) {
            self.restarts += 1;
            self.count = 0;
        }
    }

    #[derive(Message)]
    #[rtype(result = "Option<(u32, u32)>")]
    struct Bump {
        fail: bool,
    }

    impl Handler<Bump> for Counter {
        type Result = Option<(u32, u32)>;
        fn handle(&mut self, bump: Bump, ctx: &mut Context<Self>) -> Self::Result {
            guard::<Self, _, _>("counter", ctx, |_| {
                self.count += 1;
                let counts = [self.count];
                // Indexing past the end panics, as a real bug would.
                let index = usize::from(bump.fail);
                #[allow(clippy::indexing_slicing)]
                let count = counts[index];
                (count, self.restarts)
            })
        }
    }

    #[actix::test]
    async fn a_failing_actor_is_restarted_and_its_neighbour_never_notices() {
        let failing = Supervisor::start(|_| Counter::default());
        let neighbour = Supervisor::start(|_| Counter::default());
        assert_eq!(
            failing.send(Bump { fail: false }).await.unwrap(),
            Some((1, 0))
        );
        assert_eq!(
            neighbour.send(Bump { fail: false }).await.unwrap(),
            Some((1, 0))
        );

        assert_eq!(failing.send(Bump { fail: true }).await.unwrap(), None);

        // Restarted (state reset by `restarting`), same address, still answering.
        assert_eq!(
            failing.send(Bump { fail: false }).await.unwrap(),
            Some((1, 1))
        );
        assert_eq!(
            neighbour.send(Bump { fail: false }).await.unwrap(),
            Some((2, 0))
        );
    }
}
