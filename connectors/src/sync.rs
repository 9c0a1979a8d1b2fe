//! `ErrorSlot`: the first fatal error of a process, shared by its workers and operators.

use std::sync::{Arc, Mutex};

/// Holds the first fatal error met by any operator of this process. Operators record
/// failures here instead of panicking; worker loops stop when it is set and `main`
/// reports it with exit code 1.
///
/// ```
/// let slot = connectors::sync::ErrorSlot::default();
/// assert!(!slot.is_set());
/// slot.set("disk full".into());
/// slot.set("second".into());
/// assert_eq!(slot.get().as_deref(), Some("disk full"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct ErrorSlot(Arc<Mutex<Option<String>>>);

impl ErrorSlot {
    /// Records `message` unless an error is already recorded.
    pub fn set(&self, message: String) {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            tracing::error!(error = %message, "fatal");
            *slot = Some(message);
        }
    }

    /// True once an error is recorded.
    pub fn is_set(&self) -> bool {
        self.0.lock().map(|s| s.is_some()).unwrap_or(true)
    }

    /// The recorded error.
    pub fn get(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
