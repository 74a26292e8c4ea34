//! Brute-force limits shared by every process on PostgreSQL.
