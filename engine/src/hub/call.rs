//! Running a closure on another shard and awaiting its result: the mechanism
//! behind the server API, queries over all shards, and metrics gathering.
//! (Client commands use dedicated mesh messages; they are the hot path.)

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::mesh::MeshMsg;
use super::Hub;

type Value = Box<dyn Any + Send>;

#[derive(Default)]
struct Slot {
    value: RefCell<Option<Value>>,
    waker: Cell<Option<Waker>>,
}

/// Outstanding calls made from this shard.
#[derive(Default)]
pub struct Calls {
    next: Cell<u64>,
    slots: RefCell<HashMap<u64, Rc<Slot>>>,
}

impl Calls {
    fn open(&self) -> (u64, Rc<Slot>) {
        let id = self.next.get();
        self.next.set(id + 1);
        let slot = Rc::new(Slot::default());
        self.slots.borrow_mut().insert(id, slot.clone());
        (id, slot)
    }

    pub(crate) fn resolve(&self, id: u64, value: Value) {
        if let Some(slot) = self.slots.borrow_mut().remove(&id) {
            *slot.value.borrow_mut() = Some(value);
            if let Some(w) = slot.waker.take() {
                w.wake();
            }
        }
    }
}

impl Hub {
    /// A call resolved later on this shard by `calls.resolve(id, ..)`.
    pub(crate) fn open_call<T>(self: &Rc<Self>) -> (u64, Call<T>) {
        let (id, slot) = self.calls.open();
        let call = Call {
            hub: self.clone(),
            state: CallState::Waiting(id, slot),
        };
        (id, call)
    }

    /// Runs `f` on shard `dst` with its hub and resolves to the result. On the
    /// calling shard itself it runs at once.
    pub fn call<T, F>(self: &Rc<Self>, dst: usize, f: F) -> Call<T>
    where
        T: Send + 'static,
        F: FnOnce(&Hub) -> T + Send + 'static,
    {
        if dst == self.shard {
            return Call {
                hub: self.clone(),
                state: CallState::Ready(Some(f(self))),
            };
        }
        let (id, slot) = self.calls.open();
        let origin = self.shard;
        self.send(
            dst,
            MeshMsg::Run(Box::new(move |remote: &Hub| {
                let value: Value = Box::new(f(remote));
                remote.send(
                    origin,
                    MeshMsg::Run(Box::new(move |home: &Hub| home.calls.resolve(id, value))),
                );
            })),
        );
        Call {
            hub: self.clone(),
            state: CallState::Waiting(id, slot),
        }
    }

    /// Runs `f` on every shard; results in shard order.
    pub async fn call_all<T, F>(self: &Rc<Self>, f: F) -> Vec<T>
    where
        T: Send + 'static,
        F: Fn(&Hub) -> T + Send + Sync + Clone + 'static,
    {
        let calls: Vec<Call<T>> = (0..self.shards())
            .map(|s| self.call(s, f.clone()))
            .collect();
        let mut out = Vec::with_capacity(calls.len());
        for c in calls {
            out.push(c.await);
        }
        out
    }
}

pub struct Call<T> {
    hub: Rc<Hub>,
    state: CallState<T>,
}

// The result is only moved out, never pinned in place.
impl<T> Unpin for Call<T> {}

enum CallState<T> {
    Ready(Option<T>),
    Waiting(u64, Rc<Slot>),
    Done,
}

impl<T: 'static> Future for Call<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = self.get_mut();
        match &mut this.state {
            CallState::Ready(v) => Poll::Ready(v.take().expect("polled after completion")),
            CallState::Waiting(_, slot) => {
                let taken = slot.value.borrow_mut().take();
                match taken {
                    Some(v) => {
                        this.state = CallState::Done;
                        Poll::Ready(*v.downcast::<T>().expect("call result type"))
                    }
                    None => {
                        slot.waker.set(Some(cx.waker().clone()));
                        Poll::Pending
                    }
                }
            }
            CallState::Done => panic!("polled after completion"),
        }
    }
}

impl<T> Drop for Call<T> {
    fn drop(&mut self) {
        if let CallState::Waiting(id, _) = self.state {
            // Abandoned (e.g. a timed-out request): forget the slot.
            self.hub.calls.slots.borrow_mut().remove(&id);
        }
    }
}
