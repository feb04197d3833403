//! A database of its own per `hookrelay-pg` trial, on the PostgreSQL
//! server the trial is given.

use anyhow::Context;

/// A database of its own for one hookrelay-pg trial, on the server at
/// `--pg-url`.
pub struct PgDatabase {
    server: String,
    name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create(server: &str) -> anyhow::Result<PgDatabase> {
        let name = format!("hookrelay_bench_{}", std::process::id());
        let admin = Self::connect(server).await?;
        // Two statements: neither may run inside a transaction block.
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .await?;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await?;
        let mut url = url::Url::parse(server).context("--pg-url")?;
        url.set_path(&format!("/{name}"));
        Ok(PgDatabase {
            server: server.to_owned(),
            url: url.to_string(),
            name,
        })
    }

    async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .context("connecting to --pg-url")?;
        tokio::spawn(conn);
        Ok(client)
    }

    pub async fn drop_it(self) {
        if let Ok(admin) = Self::connect(&self.server).await {
            let _ = admin
                .batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ))
                .await;
        }
    }
}
