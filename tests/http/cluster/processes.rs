//! Two real Hallpass processes on one PostgreSQL database.
