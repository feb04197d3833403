//! What marks a tenant's part of the running configuration.

/// What marks a tenant's origin or destination in the running
/// configuration: the tenant's name and the egress policy its requests
/// follow (`[admin] tenant_allow_hosts`, the relay's listeners). The file's
/// own have none and are not restricted.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantMark {
    pub name: String,
    pub egress: std::sync::Arc<crate::http::guard::Egress>,
}
