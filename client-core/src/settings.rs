//! A profile's settings: which relay it talks to, the keys it trusts, what
//! it is used for and in which language it speaks.
//!
//! They are stored sealed like everything else in the profile: the relay a
//! phone uses and the coordinator it trusts say which network a person
//! reports through, which is itself sensitive.

use amparo_protocol::payload::Language;
use amparo_protocol::primitives::ed25519::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::store::{ItemKind, Profile};
use crate::survivor::{decode, encode};
use crate::{CoreError, Result};

/// What a profile is used for. A profile may do more than one thing (a
/// facilitator can also send her own reports); the role decides what the
/// tools show first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Writes reports and reads the answers.
    Survivor,
    /// Carries other people's sealed reports.
    Facilitator,
    /// Receives reports and handles cases.
    FocalPoint,
    /// Signs the directory.
    Coordinator,
}

/// A profile's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// What the profile is for.
    #[serde(default)]
    pub role: Option<Role>,
    /// Base URL of the relay.
    #[serde(default)]
    pub relay_url: Option<String>,
    /// A SOCKS5 or HTTP proxy (e.g. Tor) to reach the relay through.
    #[serde(default)]
    pub proxy: Option<String>,
    /// The coordinator's public key, pinned: directories must verify
    /// against it.
    #[serde(default, with = "keys_b64::option")]
    pub coordinator_key: Option<[u8; 32]>,
    /// Relay receipt keys trusted besides those the directory lists.
    #[serde(default, with = "keys_b64::list")]
    pub relay_keys: Vec<[u8; 32]>,
    /// A focal point's own id in the directory.
    #[serde(default)]
    pub focal_point_id: Option<String>,
    /// Language for messages.
    #[serde(default)]
    pub language: Option<Language>,
    /// A focal point's statistics threshold: counts from 1 to this minus
    /// one are suppressed before a month is shared (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statistics_threshold: Option<u32>,
}

/// Keys in settings are base64url text, as people copy them.
mod keys_b64 {
    use amparo_protocol::b64;
    use serde::{Deserialize, Deserializer, Serializer};

    pub mod option {
        use super::*;
        pub fn serialize<S: Serializer>(v: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
            match v {
                Some(k) => s.serialize_some(&b64::encode(k)),
                None => s.serialize_none(),
            }
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u8; 32]>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|t| b64::decode_array(&t, "key").map_err(serde::de::Error::custom))
                .transpose()
        }
    }

    pub mod list {
        use super::*;
        pub fn serialize<S: Serializer>(v: &[[u8; 32]], s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(v.iter().map(|k| b64::encode(k)))
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<[u8; 32]>, D::Error> {
            Vec::<String>::deserialize(d)?
                .iter()
                .map(|t| b64::decode_array(t, "key").map_err(serde::de::Error::custom))
                .collect()
        }
    }
}

impl Settings {
    /// The pinned coordinator key, or a clear error when none is set.
    pub fn coordinator(&self) -> Result<VerifyingKey> {
        self.coordinator_key
            .map(VerifyingKey)
            .ok_or(CoreError::Invalid(
                "no coordinator key is set for this profile",
            ))
    }

    /// The relay URL, or a clear error when none is set.
    pub fn relay(&self) -> Result<&str> {
        self.relay_url
            .as_deref()
            .ok_or(CoreError::Invalid("no relay is set for this profile"))
    }

    /// A client for the relay set here, through the proxy set here.
    pub fn relay_client(&self) -> Result<crate::relay::RelayClient> {
        let mut config = crate::relay::RelayConfig::new(self.relay()?);
        config.proxy = self.proxy.clone();
        crate::relay::RelayClient::new(&config)
    }

    /// The extra trusted relay keys.
    pub fn extra_relay_keys(&self) -> Vec<VerifyingKey> {
        self.relay_keys.iter().copied().map(VerifyingKey).collect()
    }
}

impl Profile {
    /// The settings (defaults when none were saved).
    pub fn settings(&self) -> Result<Settings> {
        match self.get_item(ItemKind::Settings, &self.fixed_id(b"settings"))? {
            Some((_, bytes)) => decode(&bytes, "settings"),
            None => Ok(Settings::default()),
        }
    }

    /// Replaces the settings, if the relay and proxy addresses are ones a
    /// client could use and the focal point id follows the directory's rule
    /// (else nothing changes).
    ///
    /// A real profile with a duress PIN gives its decoy the same settings
    /// (`crate::decoy`): a decoy with no relay or no coordinator key would
    /// give itself away. That write goes through the decoy's own connection,
    /// so this must not run inside a transaction of `self`. If it fails, the
    /// settings are saved here and the error says the decoy's copy was not
    /// made; saving again (or [`Profile::keep_decoy_current`]) retries it.
    pub fn save_settings(&self, settings: &Settings) -> Result<()> {
        self.check_and_put_settings(settings)?;
        crate::decoy::after_settings_saved(self, settings)
    }

    /// Stores `settings` as they are, checked already (the decoy's copy of
    /// its real profile's, see `crate::decoy`).
    pub(crate) fn put_settings(&self, settings: &Settings) -> Result<()> {
        self.put_item(
            ItemKind::Settings,
            &self.fixed_id(b"settings"),
            0,
            &encode(settings)?,
        )
    }

    fn check_and_put_settings(&self, settings: &Settings) -> Result<()> {
        if let Some(url) = &settings.relay_url
            && !usable_url(url, &["http", "https"])
        {
            return Err(CoreError::Invalid(
                "the relay address must be http:// or https:// and a host, like https://relay.example.org",
            ));
        }
        if let Some(proxy) = &settings.proxy
            && !usable_url(proxy, &["socks5", "socks5h", "http", "https"])
        {
            return Err(CoreError::Invalid(
                "the proxy must be socks5://, socks5h://, http:// or https:// and a host, like socks5h://127.0.0.1:9050",
            ));
        }
        if let Some(id) = &settings.focal_point_id
            && amparo_protocol::directory::check_id(id).is_err()
        {
            return Err(CoreError::Invalid(
                "a focal point id is 1 to 64 of a-z, 0-9, - and _",
            ));
        }
        self.put_settings(settings)
    }
}

/// Whether `text` parses as a URL with one of `schemes` and a host.
fn usable_url(text: &str, schemes: &[&str]) -> bool {
    reqwest::Url::parse(text)
        .is_ok_and(|u| schemes.contains(&u.scheme()) && u.host_str().is_some_and(|h| !h.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::KdfParams;

    #[test]
    fn settings_round_trip_and_refuse_a_bad_url() {
        let dir = tempfile::tempdir().unwrap();
        let p = Profile::create(dir.path(), "1234", KdfParams::DANGEROUSLY_FAST_FOR_TESTS).unwrap();
        assert_eq!(p.settings().unwrap(), Settings::default());
        assert!(p.settings().unwrap().coordinator().is_err());
        let s = Settings {
            statistics_threshold: None,
            role: Some(Role::FocalPoint),
            relay_url: Some("http://127.0.0.1:8470".into()),
            coordinator_key: Some([7; 32]),
            relay_keys: vec![[9; 32]],
            focal_point_id: Some("pe-defensoria".into()),
            language: Some(Language::Pt),
            proxy: None,
        };
        p.save_settings(&s).unwrap();
        drop(p);
        let p = Profile::open(dir.path(), "1234").unwrap();
        assert_eq!(p.settings().unwrap(), s);
        for bad in [
            Settings {
                relay_url: Some("ftp://x".into()),
                ..s.clone()
            },
            Settings {
                relay_url: Some("not a url".into()),
                ..s.clone()
            },
            Settings {
                relay_url: Some("http://".into()),
                ..s.clone()
            },
            Settings {
                proxy: Some("tor".into()),
                ..s.clone()
            },
            Settings {
                focal_point_id: Some("PE Defensoría".into()),
                ..s.clone()
            },
        ] {
            assert!(p.save_settings(&bad).is_err(), "{bad:?}");
        }
        p.save_settings(&Settings {
            proxy: Some("socks5h://127.0.0.1:9050".into()),
            ..s.clone()
        })
        .unwrap();
        p.save_settings(&s).unwrap();
        assert_eq!(
            p.settings().unwrap(),
            s,
            "a refused change leaves them as they were"
        );
    }
}
