//! Sites, projects and their provisioning: the site lifecycle (`lifecycle`, pure), the
//! records a site needs (`records`, pure), the operations that apply them in store
//! transactions (`ops`), the `Provisioner` that does the platform side of each step, and the
//! worker that runs durable jobs.

pub mod lifecycle;
pub mod ops;
mod provisioner;
pub mod records;
mod worker;

pub use lifecycle::Request;
pub use provisioner::{Builtin, Exec, Provisioner, provisioner};
pub use worker::{Jobs, start};
