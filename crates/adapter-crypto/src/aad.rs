//! The additional authenticated data that binds a ciphertext to its envelope header and to
//! its cell `(user, setting key)`.

use domain::{UserId, settings::SettingKey};

/// Domain-separation label: these bytes authenticate nothing else.
const LABEL: &[u8] = b"user-settings";

/// The envelope header fields that are authenticated with the ciphertext.
pub(crate) struct Header<'a> {
    pub(crate) v: u32,
    pub(crate) alg: &'a str,
    pub(crate) kid: &'a str,
}

/// AAD = label, v (decimal text), alg, kid, user id (16 bytes), setting key; each part
/// length-prefixed so that no two different inputs share an encoding.
pub(crate) fn build(header: &Header<'_>, user: UserId, key: &SettingKey) -> Vec<u8> {
    let version = header.v.to_string();
    length_prefixed(&[
        LABEL,
        version.as_bytes(),
        header.alg.as_bytes(),
        header.kid.as_bytes(),
        user.as_bytes(),
        key.as_str().as_bytes(),
    ])
}

/// Concatenates each part as its u32 big-endian byte length followed by its bytes.
fn length_prefixed(parts: &[&[u8]]) -> Vec<u8> {
    let total = parts.iter().map(|p| 4 + p.len()).sum();
    let mut out = Vec::with_capacity(total);
    for part in parts {
        // Parts are a label, short header fields, 16 bytes and a key of at most 255 bytes.
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use domain::secrets::{ENVELOPE_ALG, ENVELOPE_VERSION};
    use uuid::Uuid;

    use super::*;

    fn header(kid: &str) -> Header<'_> {
        Header {
            v: ENVELOPE_VERSION,
            alg: ENVELOPE_ALG,
            kid,
        }
    }

    fn user(bytes: [u8; 16]) -> UserId {
        UserId::new(Uuid::from_bytes(bytes))
    }

    fn key(raw: &str) -> SettingKey {
        SettingKey::parse(raw).unwrap()
    }

    #[test]
    fn parts_are_u32_big_endian_length_then_bytes() {
        assert_eq!(
            length_prefixed(&[b"ab", b"", b"c"]),
            b"\0\0\0\x02ab\0\0\0\0\0\0\0\x01c".to_vec()
        );
    }

    #[test]
    fn moving_a_boundary_between_parts_changes_the_encoding() {
        assert_ne!(
            length_prefixed(&[b"ab", b"c"]),
            length_prefixed(&[b"a", b"bc"])
        );
    }

    #[test]
    fn aad_layout_is_label_version_alg_kid_user_key() {
        let aad = build(&header("k1"), user([7; 16]), &key("a.b"));
        let mut expected = Vec::new();
        expected.extend_from_slice(b"\0\0\0\x0duser-settings");
        expected.extend_from_slice(b"\0\0\0\x011");
        expected.extend_from_slice(b"\0\0\0\x13A256GCM-HKDF-SHA256");
        expected.extend_from_slice(b"\0\0\0\x02k1");
        expected.extend_from_slice(b"\0\0\0\x10");
        expected.extend_from_slice(&[7; 16]);
        expected.extend_from_slice(b"\0\0\0\x03a.b");
        assert_eq!(aad, expected);
    }

    #[test]
    fn cells_whose_naive_concatenation_collides_get_different_aad() {
        // kid "kb" + user "b"*16 + key "x"  vs  kid "k" + user "b"*16 + key "bx":
        // both concatenate to "k" + "b"*17 + "x".
        let (kid_a, user_a, key_a) = ("kb", [b'b'; 16], "x");
        let (kid_b, user_b, key_b) = ("k", [b'b'; 16], "bx");
        let naive =
            |kid: &str, user: &[u8; 16], key: &str| [kid.as_bytes(), user, key.as_bytes()].concat();
        assert_eq!(naive(kid_a, &user_a, key_a), naive(kid_b, &user_b, key_b));

        let aad_a = build(&header(kid_a), user(user_a), &key(key_a));
        let aad_b = build(&header(kid_b), user(user_b), &key(key_b));
        assert_ne!(aad_a, aad_b);
    }

    #[test]
    fn each_bound_field_changes_the_aad() {
        let base = build(&header("k1"), user([1; 16]), &key("a.b"));
        let other_version = Header {
            v: 2,
            ..header("k1")
        };
        let other_alg = Header {
            alg: "A256GCM",
            ..header("k1")
        };
        assert_ne!(base, build(&other_version, user([1; 16]), &key("a.b")));
        assert_ne!(base, build(&other_alg, user([1; 16]), &key("a.b")));
        assert_ne!(base, build(&header("k2"), user([1; 16]), &key("a.b")));
        assert_ne!(base, build(&header("k1"), user([2; 16]), &key("a.b")));
        assert_ne!(base, build(&header("k1"), user([1; 16]), &key("a.c")));
    }
}
