pub fn serve(_d: &std::path::Path, _a: ServeArgs) -> engram_core::Result<()> {
    Err(engram_core::Error::InvalidInput("serve: not yet".into()))
}
#[derive(clap::Args)]
pub struct ServeArgs {}
