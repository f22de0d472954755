//! Generates the etcd, Raft and storage protobuf code with the `protoc` that ships inside
//! the `protoc-bin-vendored` crate, so a fresh machine needs no system protobuf compiler.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; nothing else reads the environment here.
    unsafe { std::env::set_var("PROTOC", protoc) };

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Namespaces are large next to the other operations and results: boxed, they do
        // not grow every command and result held in memory.
        .boxed(".vane.raft.v1.Command.op.namespace_change")
        .boxed(".vane.raft.v1.CommandResult.result.namespace")
        .boxed(".vane.raft.v1.Command.op.change_create")
        .boxed(".vane.raft.v1.CommandResult.result.change")
        .compile_protos(
            &[
                "etcd/kv.proto",
                "etcd/auth.proto",
                "etcd/rpc.proto",
                "raft/raft.proto",
                "raft/storage.proto",
                "raft/peer.proto",
                "vane/v1/session.proto",
                "vane/v1/config.proto",
            ],
            &["etcd", "raft", "vane/v1"],
        )?;
    println!("cargo:rerun-if-changed=etcd");
    println!("cargo:rerun-if-changed=raft");
    println!("cargo:rerun-if-changed=vane");
    Ok(())
}
