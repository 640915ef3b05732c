//! placeholder
pub type List = std::collections::VecDeque<bytes::Bytes>;
