//! composefs roots.

pub mod signed;
