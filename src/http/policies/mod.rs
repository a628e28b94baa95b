//! `/policies/*`.

mod instance;

pub fn configure(cfg: &mut actix_web::web::ServiceConfig) {
    instance::configure(cfg);
}
