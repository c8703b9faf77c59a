//! All integration tests in one binary (faster to build and link).
