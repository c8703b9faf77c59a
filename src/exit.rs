//! Exit codes, one place: scripts rely on them, so they are part of the interface.

/// How a run ended. The numeric values are documented in the README and the man pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Everything worked and nothing was found wrong.
    Ok,
    /// The run worked and found a problem (`listeners --port` with nothing there, `doctor`).
    Problems,
    /// The user asked for something invalid: a bad flag, value or input file.
    Usage,
    /// The environment refused: missing privilege, no such namespace, kernel feature missing.
    Environment,
    /// Stopped by Ctrl-C (128 + SIGINT), as shells expect.
    Interrupted,
}

impl ExitCode {
    pub fn code(self) -> i32 {
        match self {
            ExitCode::Ok => 0,
            ExitCode::Problems => 1,
            ExitCode::Usage => 2,
            ExitCode::Environment => 3,
            ExitCode::Interrupted => 130,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ExitCode;

    #[test]
    fn exit_codes_are_the_documented_numbers() {
        assert_eq!(ExitCode::Ok.code(), 0);
        assert_eq!(ExitCode::Problems.code(), 1);
        assert_eq!(ExitCode::Usage.code(), 2);
        assert_eq!(ExitCode::Environment.code(), 3);
        assert_eq!(ExitCode::Interrupted.code(), 130);
    }
}
