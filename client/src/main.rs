//! `vanectl`, Vane's etcdctl-compatible command line; everything lives in `vanectl/`.

mod vanectl;

fn main() -> std::process::ExitCode {
    vanectl::main()
}
