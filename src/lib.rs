pub mod aof;
pub mod sync;
