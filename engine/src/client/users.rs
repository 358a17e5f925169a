//! Connections per user across the node (`client.max_connections_per_user`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
pub struct UserCounts {
    max: usize,
    counts: Mutex<HashMap<Arc<str>, usize>>,
}

impl UserCounts {
    pub fn new(max: usize) -> Self {
        UserCounts {
            max,
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one more connection of `user`; false when that is one too many.
    /// The anonymous user `""` is not limited.
    pub fn admit(&self, user: &Arc<str>) -> bool {
        if self.max == 0 || user.is_empty() {
            return true;
        }
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = c.entry(user.clone()).or_insert(0);
        if *n >= self.max {
            return false;
        }
        *n += 1;
        true
    }

    pub fn release(&self, user: &str) {
        if self.max == 0 || user.is_empty() {
            return;
        }
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = c.get_mut(user) {
            *n -= 1;
            if *n == 0 {
                c.remove(user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_named_users_only() {
        let u = UserCounts::new(2);
        let alice: Arc<str> = "alice".into();
        assert!(u.admit(&alice) && u.admit(&alice));
        assert!(!u.admit(&alice));
        u.release("alice");
        assert!(u.admit(&alice));
        let anon: Arc<str> = "".into();
        for _ in 0..10 {
            assert!(u.admit(&anon));
        }
    }
}
