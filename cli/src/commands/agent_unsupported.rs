//! Freezer agent options for features rime does not have. The parser accepts them so that the
//! error names the option given (and a job file naming one is refused, not ignored), then
//! `agent_opts` refuses them.
//!
//! Each option is written once, in the table at the end: the macro makes of it both the
//! parsed field and the entry that names it in the error, so the two cannot drift apart.

use clap::Args;

/// Whether an unsupported option was given on the command line (or by a job file).
trait Given {
    fn given(&self) -> bool;
}

impl Given for Option<String> {
    fn given(&self) -> bool {
        self.is_some()
    }
}

impl Given for bool {
    fn given(&self) -> bool {
        *self
    }
}

/// Declares [`Unsupported`]: a hidden `--long` option for each field (with any further `#[arg]`
/// given, such as an alias), in the table's order, and [`Unsupported::first`] naming them.
macro_rules! unsupported_options {
    ($($(#[$extra:meta])* $field:ident: $ty:ty => $name:literal,)*) => {
        /// Freezer options for features rime does not have: accepted by the parser so that the
        /// error names them, then refused.
        #[derive(Args, Debug, Clone, Default)]
        pub struct Unsupported {
            $(
                #[arg(long, hide = true)]
                $(#[$extra])*
                pub $field: $ty,
            )*
        }

        impl Unsupported {
            /// The first option given, by its Freezer name.
            pub fn first(&self) -> Option<&'static str> {
                [$((self.$field.given(), $name),)*]
                    .into_iter()
                    .find(|(given, _)| *given)
                    .map(|(_, name)| name)
            }
        }
    };
}

unsupported_options! {
    cinder_vol_id: Option<String> => "--cinder-vol-id (Cinder backups)",
    cinder_vol_name: Option<String> => "--cinder-vol-name (Cinder backups)",
    cindernative_vol_id: Option<String> => "--cindernative-vol-id (Cinder backups)",
    cindernative_backup_id: Option<String> => "--cindernative-backup-id (Cinder backups)",
    cinderbrick_vol_id: Option<String> => "--cinderbrick-vol-id (Cinder backups)",
    nova_inst_id: Option<String> => "--nova-inst-id (Nova backups)",
    nova_inst_name: Option<String> => "--nova-inst-name (Nova backups)",
    glance_image_id: Option<String> => "--glance-image-id (Glance backups)",
    glance_image_name: Option<String> => "--glance-image-name (Glance backups)",
    project_id: Option<String> => "--project-id (Nova/Glance project backups)",
    sql_server_conf: Option<String> => "--sql-server-conf (SQL Server)",
    ssh_password: Option<String> => "--ssh-password (use --ssh-key)",
    ftp_host: Option<String> => "--ftp-host (FTP storage)",
    access_key: Option<String> => "--access-key (S3 storage)",
    secret_key: Option<String> => "--secret-key (S3 storage)",
    endpoint: Option<String> => "--endpoint (S3 storage)",
    consistency_check: bool => "--consistency-check (rime verifies every chunk by its hash)",
    consistency_checksum: Option<String> => "--consistency-checksum",
    insecure: bool => "--insecure (rime always checks the server's TLS certificate)",
    proxy: Option<String> => "--proxy (set HTTPS_PROXY / HTTP_PROXY in the environment instead)",
    #[arg(alias = "os-auth-ver")]
    os_identity_api_version: Option<String> =>
        "--os-identity-api-version (rime reads the OS_* environment)",
    os_trust_id: Option<String> => "--os-trust-id (Keystone trusts)",
    fullbackup_rotation: Option<String> => "--fullbackup-rotation (Cinder native backups)",
    rsync_block_size: Option<String> => "--rsync-block-size (the rsync engine)",
    nova_restore_network: Option<String> => "--nova-restore-network (Nova backups)",
    glance_image_name_filter: Option<String> => "--glance-image-name-filter (Glance backups)",
    cindernative_backup_az: Option<String> => "--cindernative-backup-az (Cinder backups)",
    cindernative_backup_container: Option<String> =>
        "--cindernative-backup-container (Cinder backups)",
    temp_resource_prefix: Option<String> => "--temp-resource-prefix (cloud backups)",
    ftp_username: Option<String> => "--ftp-username (FTP storage)",
    ftp_password: Option<String> => "--ftp-password (FTP storage)",
    ftp_port: Option<String> => "--ftp-port (FTP storage)",
    ftp_keyfile: Option<String> => "--ftp-keyfile (FTP storage)",
    ftp_certfile: Option<String> => "--ftp-certfile (FTP storage)",
}
