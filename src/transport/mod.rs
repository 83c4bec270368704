//! How gt reaches hosts: a small `Host` trait with SSH, local and fake
//! implementations (issue 4).
