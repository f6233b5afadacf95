//! A semaphore that is fair across accounts: when requests wait, slots go to the waiting
//! accounts in turn, one each, rather than first come first served. An account with a
//! crowd of posts (a reconnect storm: a `subscribed` and a catch-up for each of a thousand
//! dashboards) then delays another account's live event by one slot's turn, not by the
//! whole crowd. With nobody else waiting, one account may use every slot.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;
use uuid::Uuid;

pub struct FairSemaphore {
    state: Mutex<State>,
}

struct State {
    free: usize,
    /// Waiters by account, each queue first come first served.
    waiting: HashMap<Uuid, VecDeque<oneshot::Sender<()>>>,
    /// Accounts with waiters, in the order they get their next slot.
    turns: VecDeque<Uuid>,
}

/// A slot; dropping it hands it on.
pub struct Permit {
    owner: Arc<FairSemaphore>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.owner.release();
    }
}

/// A waiter. Dropped before it was granted (its caller gave up), it refuses the slot, or
/// hands it on if the slot came in the meantime.
struct Pending {
    rx: oneshot::Receiver<()>,
    owner: Arc<FairSemaphore>,
    granted: bool,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.granted {
            self.rx.close();
            if self.rx.try_recv().is_ok() {
                self.owner.release();
            }
        }
    }
}

impl FairSemaphore {
    pub fn new(slots: usize) -> Arc<FairSemaphore> {
        Arc::new(FairSemaphore {
            state: Mutex::new(State {
                free: slots,
                waiting: HashMap::new(),
                turns: VecDeque::new(),
            }),
        })
    }

    /// Waits for a slot for `account`.
    pub async fn acquire(self: &Arc<Self>, account: Uuid) -> Permit {
        let rx = {
            let Ok(mut state) = self.state.lock() else {
                // Poisoned (a panic elsewhere while holding it): no fairness, no wait.
                return Permit {
                    owner: self.clone(),
                };
            };
            if state.free > 0 && state.turns.is_empty() {
                state.free -= 1;
                return Permit {
                    owner: self.clone(),
                };
            }
            let (tx, rx) = oneshot::channel();
            let queue = state.waiting.entry(account).or_default();
            if queue.is_empty() {
                state.turns.push_back(account);
            }
            if let Some(queue) = state.waiting.get_mut(&account) {
                queue.push_back(tx);
            }
            rx
        };
        let mut pending = Pending {
            rx,
            owner: self.clone(),
            granted: false,
        };
        // A sender dropped without sending cannot happen while the semaphore lives.
        let _ = (&mut pending.rx).await;
        pending.granted = true;
        Permit {
            owner: self.clone(),
        }
    }

    /// Hands a slot to the next account in turn whose waiter is still there, or frees it.
    fn release(&self) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        while let Some(account) = state.turns.pop_front() {
            let Some(queue) = state.waiting.get_mut(&account) else {
                continue;
            };
            let mut handed = false;
            while let Some(waiter) = queue.pop_front() {
                if waiter.send(()).is_ok() {
                    handed = true;
                    break;
                }
            }
            if queue.is_empty() {
                state.waiting.remove(&account);
            } else {
                state.turns.push_back(account);
            }
            if handed {
                return;
            }
        }
        state.free += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn waiting_accounts_take_turns_and_one_account_alone_uses_every_slot() {
        let sem = FairSemaphore::new(2);
        let (crowd, other) = (Uuid::new_v4(), Uuid::new_v4());
        // Alone, one account takes both slots.
        let a = sem.acquire(crowd).await;
        let b = sem.acquire(crowd).await;
        // Ten more of the crowd wait, then one of another account.
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut waiters = Vec::new();
        for i in 0..10 {
            let (sem, order) = (sem.clone(), order.clone());
            waiters.push(tokio::spawn(async move {
                let _p = sem.acquire(crowd).await;
                order.lock().expect("order").push(format!("crowd-{i}"));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }));
            tokio::task::yield_now().await;
        }
        let (sem2, order2) = (sem.clone(), order.clone());
        waiters.push(tokio::spawn(async move {
            let _p = sem2.acquire(other).await;
            order2.lock().expect("order").push("other".into());
        }));
        tokio::task::yield_now().await;
        drop(a);
        drop(b);
        for w in waiters {
            w.await.expect("waiter");
        }
        let order = order.lock().expect("order").clone();
        let other_at = order.iter().position(|o| o == "other").expect("other ran");
        assert!(
            other_at <= 1,
            "the other account waited behind the crowd: {order:?}"
        );
        assert_eq!(order.len(), 11);
    }

    #[tokio::test]
    async fn a_waiter_that_gave_up_does_not_swallow_a_slot() {
        let sem = FairSemaphore::new(1);
        let account = Uuid::new_v4();
        let held = sem.acquire(account).await;
        let gave_up = tokio::time::timeout(Duration::from_millis(10), sem.acquire(account)).await;
        assert!(gave_up.is_err());
        drop(held);
        let again = tokio::time::timeout(Duration::from_secs(1), sem.acquire(account)).await;
        assert!(again.is_ok(), "the slot was lost to a waiter that left");
    }
}
