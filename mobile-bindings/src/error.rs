//! The one error an app sees: only the cases it can act on, with no personal data in the text.

/// What went wrong, as an app acts on it.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[non_exhaustive]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub enum SiteSyncError {
    /// The input was refused; nothing was written. Show `reason` next to `field`.
    #[error("{field}: {reason}")]
    Validation {
        /// The field, as the API names it (`work_days_centi`, `date`, `amend_reason` …).
        field: String,
        /// Why, in a sentence.
        reason: String,
    },
    /// A site, worker, work item, line, cycle or key result does not exist here.
    #[error("not found: {what}")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// The server refused this device (revoked or unknown token): enroll it again. Also: the user's
    /// role may not make this write (a foreman approving a day); nothing was written.
    #[error("not authorized")]
    NotAuthorized,
    /// A worker disputes the day and no one has answered: answer the dispute (`answer_dispute` with
    /// this record id), then approve. Nothing was written.
    #[error("dispute {dispute} is not answered")]
    DisputeOpen {
        /// The dispute's record id.
        dispute: String,
    },
    /// Phones wrote some fields of the day differently offline and no one has chosen: show them
    /// (`open_conflicts`), then approve with `approve_day_despite_conflicts` once the manager has
    /// looked. Nothing was written.
    #[error("{count} open conflicts on the day")]
    OpenConflicts {
        /// How many fields hold competing values.
        count: u32,
    },
    /// The site requires each crew's confirmation before the day is submitted, and this crew has not
    /// confirmed (`confirm_crew`). Nothing was written.
    #[error("crew {crew} has not confirmed the day")]
    CrewNotConfirmed {
        /// The crew id.
        crew: String,
    },
    /// The server could not be reached or the exchange broke off; local data is intact and sync
    /// retries.
    #[error("offline: {reason}")]
    Offline { reason: String },
    /// The server's certificate was refused (it does not chain to the trusted roots or the company
    /// CA, or is not valid for the server's host), or the server does not speak TLS. Nothing was
    /// sent. Sync retries; if it persists, the server address or CA given to `open` is wrong.
    #[error("TLS: {reason}")]
    Tls {
        /// Which, in a sentence.
        reason: String,
    },
    /// The server no longer speaks this app's sync protocol: the app must be updated before it syncs
    /// again (`sync_status().update` is `Required` too). Local data is intact; writes go on offline.
    #[error("update required: {reason}")]
    UpdateRequired {
        /// The server's words, for the user.
        reason: String,
    },
    /// The store could not be opened with the key given: ask the keystore again, or (a lost key)
    /// start a new store and sync it down. Nothing was read or written.
    #[error("store key: {problem:?}")]
    StoreKey {
        /// Which case.
        problem: StoreKeyIssue,
    },
    /// The site mesh needs this phone's device certificate, which head office issues at a server
    /// sync: sync with the server once, then exchange with peers.
    #[error("no device certificate yet: sync with the server first")]
    NoDeviceCertificate,
    /// The other phone refused this one (its certificate expired or was revoked, another
    /// company's). Nothing was exchanged.
    #[error("the peer refused this phone: {reason}")]
    PeerRefused {
        /// The peer's words.
        reason: String,
    },
    /// This phone refused the other one (its certificate expired, was revoked or is another
    /// company's, or it did not prove it holds its key). Nothing was exchanged.
    #[error("refused the peer: {reason}")]
    PeerRejected {
        /// Why, in a sentence.
        reason: String,
    },
    /// The peer could not be reached, or the exchange broke off (connection lost, timeout, a
    /// message out of order). What was merged before is whole and kept; exchange again.
    #[error("peer unreachable: {reason}")]
    PeerUnreachable { reason: String },
    /// The app's [`crate::PeerTransport`] stream closed or failed. Thrown by the app's transport
    /// and returned as thrown; what was merged before is whole and kept.
    #[error("transport closed: {reason}")]
    TransportClosed { reason: String },
    /// The phone's storage failed (disk full, damaged file).
    #[error("storage: {reason}")]
    Storage { reason: String },
    /// A bug: a panic or an unexpected failure inside the library, caught at the boundary.
    #[error("internal error: {reason}")]
    Internal { reason: String },
}

/// Why [`SiteSyncError::StoreKey`]: the core's [`sitesync_core::store::StoreKeyProblem`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
#[non_exhaustive]
pub enum StoreKeyIssue {
    /// The store is encrypted and the key does not open it.
    Wrong,
    /// The store is encrypted and `open` was called without a key.
    Required,
    /// The store is clear and `open_encrypted` was called.
    NotEncrypted,
    /// This library was built without SQLCipher.
    Unavailable,
    /// The key is not 32 bytes.
    Malformed,
}

impl From<sitesync_core::store::StoreKeyProblem> for StoreKeyIssue {
    fn from(p: sitesync_core::store::StoreKeyProblem) -> Self {
        use sitesync_core::store::StoreKeyProblem as P;
        match p {
            P::Wrong => StoreKeyIssue::Wrong,
            P::Required => StoreKeyIssue::Required,
            P::NotEncrypted => StoreKeyIssue::NotEncrypted,
            P::Unavailable => StoreKeyIssue::Unavailable,
            _ => StoreKeyIssue::Malformed,
        }
    }
}

impl From<sitesync_core::Error> for SiteSyncError {
    fn from(e: sitesync_core::Error) -> Self {
        use sitesync_core::Error as E;
        let text = e.to_string();
        match e {
            E::Invalid { field, reason } => SiteSyncError::Validation {
                field: field.to_string(),
                reason,
            },
            E::InvalidDate(_) => SiteSyncError::Validation {
                field: "date".into(),
                reason: text,
            },
            E::DuplicateLine { .. } => SiteSyncError::Validation {
                field: "worker".into(),
                reason: text,
            },
            E::LineDeleted(_) => SiteSyncError::Validation {
                field: "id".into(),
                reason: text,
            },
            E::DayLocked { .. } => SiteSyncError::Validation {
                field: "amend_reason".into(),
                reason: text,
            },
            E::InvalidTransition(_) => SiteSyncError::Validation {
                field: "status".into(),
                reason: text,
            },
            E::InactiveWorker(_) => SiteSyncError::Validation {
                field: "worker".into(),
                reason: text,
            },
            E::NotBound => SiteSyncError::Validation {
                field: "server".into(),
                reason: text,
            },
            // No card number can be sealed before the first sync: the app asks to sync, or to
            // add the worker without it (the text carries no number).
            E::PiiKeyMissing => SiteSyncError::Validation {
                field: "id_card".into(),
                reason: text,
            },
            E::Import { .. } => SiteSyncError::Validation {
                field: "file".into(),
                reason: text,
            },
            E::DisputeOpen { dispute, .. } => SiteSyncError::DisputeOpen { dispute },
            E::CrewNotConfirmed { crew, .. } => SiteSyncError::CrewNotConfirmed { crew },
            E::NothingToSign { .. } => SiteSyncError::Validation {
                field: "worker".into(),
                reason: "no line to sign in that period".into(),
            },
            E::UnknownSite(_)
            | E::UnknownWorker { .. }
            | E::UnknownWorkItem { .. }
            | E::UnknownCrew { .. }
            | E::UnknownLine(_)
            | E::UnknownCycle(_)
            | E::UnknownObjective(_)
            | E::UnknownKeyResult(_) => SiteSyncError::NotFound { what: text },
            // The server refused the device, or the user's role may not make this write (the same
            // rule the server applies: a foreman approving, a name that is not the user's).
            E::Unauthorized(_) | E::NotAuthorized { .. } => SiteSyncError::NotAuthorized,
            E::Sync(reason) => SiteSyncError::Offline { reason },
            E::Tls { reason } => SiteSyncError::Tls { reason },
            E::UpdateRequired(reason) => SiteSyncError::UpdateRequired { reason },
            E::StoreKey { problem, .. } => SiteSyncError::StoreKey {
                problem: problem.into(),
            },
            E::Storage(_) | E::Database(_) | E::Io(_) | E::CorruptDocument { .. } | E::StoreTooNew { .. } => {
                SiteSyncError::Storage { reason: text }
            }
            _ => SiteSyncError::Internal { reason: text },
        }
    }
}

impl From<uniffi::UnexpectedUniFFICallbackError> for SiteSyncError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        SiteSyncError::Internal {
            reason: format!("the app's callback failed: {}", e.reason),
        }
    }
}
