//! Several Hallpass processes on one PostgreSQL database (issue 12, points 2 and 3): the
//! change probe that tells a process what another committed, brute-force limits shared by
//! every process, and two real server processes driven side by side.

mod limits;
mod probe;
mod processes;
