fn main() -> std::process::ExitCode {
    gt::cli::run()
}
