//! Validation errors, keyed by the form field they belong to.

use serde::Serialize;

/// Messages per field, in the order they were found. A form re-renders each message next to
/// its field; the API returns them in `error.fields`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct FieldErrors(Vec<FieldError>);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The request field, e.g. `username`.
    #[schema(value_type = String)]
    pub field: &'static str,
    pub message: String,
}

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn single(field: &'static str, message: impl Into<String>) -> Self {
        let mut e = Self::new();
        e.add(field, message);
        e
    }

    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.push(FieldError {
            field,
            message: message.into(),
        });
    }

    /// Keeps the value, or records the error under `field` and returns `None`.
    pub fn check<T>(&mut self, field: &'static str, r: Result<T, String>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(m) => {
                self.add(field, m);
                None
            }
        }
    }

    /// The first message for `field`, for templates.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// One sentence naming every problem, for API `error.message`.
    pub fn summary(&self) -> String {
        self.0
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Adds every message of `other` after these (two parsers' findings, one answer).
    pub fn merge(&mut self, other: FieldErrors) {
        self.0.extend(other.0);
    }

    /// The same messages with `from`'s filed under `to` (a rule shared by two forms that
    /// name its field differently).
    pub fn renamed(mut self, from: &str, to: &'static str) -> Self {
        for e in &mut self.0 {
            if e.field == from {
                e.field = to;
            }
        }
        self
    }

    pub fn into_result(self) -> Result<(), FieldErrors> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }
}
