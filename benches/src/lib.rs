//! Placeholder; see benches/README.md.
