//! The API over a real runtime on a real SQLite file.
