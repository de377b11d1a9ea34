//! Noise XX against the deterministic vector of spec §11.

use super::*;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace([' ', '\n'], "")).unwrap()
}

fn seed(b: u8) -> [u8; 32] {
    [b; 32]
}

#[test]
fn spec_vector_byte_for_byte() {
    let is = KeyPair::from_seed(&seed(1));
    let rs = KeyPair::from_seed(&seed(2));
    assert_eq!(
        is.public_key().to_vec(),
        h("8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c")
    );
    assert_eq!(
        rs.public_key().to_vec(),
        h("8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394")
    );
    let mut i = NoiseXx::new(true, is, &seed(3));
    let mut r = NoiseXx::new(false, rs, &seed(4));
    assert!(i.is_my_turn() && !r.is_my_turn());

    let mut m1 = Vec::new();
    assert!(i.write_message(&mut m1).unwrap().is_none());
    assert_eq!(
        m1,
        h("ed4928c628d1c2c6eae90338905995612959273a5c63f93636c14614ac8737d1")
    );
    assert!(r.read_message(&m1).unwrap().is_none());

    let mut m2 = Vec::new();
    assert!(r.write_message(&mut m2).unwrap().is_none());
    assert_eq!(
        m2,
        h("ca93ac1705187071d67b83c7ff0efe8108e8ec4530575d7726879333dbdabe7c
           8924380c5066a7dcffff1174cebcbfefc17dafd675f6dc2e688de867ff96c431a1fcb7f80997fba29d5bbc64a50e8d74
           e82bc092a89c62eacaf68db17bb5d0b5")
    );
    assert!(i.read_message(&m2).unwrap().is_none());

    let mut m3 = Vec::new();
    let ir = i.write_message(&mut m3).unwrap().unwrap();
    assert_eq!(
        m3,
        h("585b6e8320c9dfc6764d48e242b912333244a85ae8769c90ee632f1d3bf6945d6d4729ee9c716f0f82946ce191158c48
           0d53f508585c93bb66354bbee6b8bdad")
    );
    let rr = r.read_message(&m3).unwrap().unwrap();
    assert!(i.is_done() && r.is_done());

    let hh = h(
        "aa42bcea44d843e3803e549191ae7eac847a85dccf21ef3918a7cf228d87b788
                9b194cdb190b8b2cf82daf543e71e86871532b84ba1d7982489eb3040dcfc412",
    );
    assert_eq!(ir.handshake_hash.to_vec(), hh);
    assert_eq!(rr.handshake_hash.to_vec(), hh);
    let itx = h("36e72ba85cd0a2b5e7c9f44704a1757d7230c30dd39736e46f2190fcd1300c13");
    let irx = h("29c4a931005b47aaf766f5ec7a119810eb15399b8612e79071f77447826dee17");
    assert_eq!(ir.tx.to_vec(), itx);
    assert_eq!(ir.rx.to_vec(), irx);
    assert_eq!(rr.tx.to_vec(), irx);
    assert_eq!(rr.rx.to_vec(), itx);
    assert_eq!(
        ir.remote_public_key,
        KeyPair::from_seed(&seed(2)).public_key()
    );
    assert_eq!(
        rr.remote_public_key,
        KeyPair::from_seed(&seed(1)).public_key()
    );
}

#[test]
fn tampering_and_bad_points_fail_cleanly() {
    let mut i = NoiseXx::new(true, KeyPair::from_seed(&seed(1)), &seed(3));
    let mut r = NoiseXx::new(false, KeyPair::from_seed(&seed(2)), &seed(4));
    let mut m1 = Vec::new();
    i.write_message(&mut m1).unwrap();
    r.read_message(&m1).unwrap();
    let mut m2 = Vec::new();
    r.write_message(&mut m2).unwrap();
    let mut bad = m2.clone();
    bad[50] ^= 1;
    assert!(i.read_message(&bad).is_err());
    assert!(i.read_message(&m2[..95]).is_err());

    // Identity and small-order points are refused like libsodium does.
    let kp = KeyPair::from_seed(&seed(9));
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert!(kp.dh(&identity).is_err());
    assert!(kp.dh(&[0u8; 32]).is_err());
    // Non-canonical y (= p) is refused.
    let mut p = [0xffu8; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    assert!(kp.dh(&p).is_err());
    assert!(validate_public_key(&identity).is_err());
    assert!(validate_public_key(&kp.public_key()).is_ok());
}

#[test]
fn debug_prints_no_secrets() {
    let kp = KeyPair::from_seed(&seed(7));
    let dbg = format!("{kp:?}");
    assert!(dbg.contains("public"));
    assert!(!dbg.contains(&format!("{:?}", kp.scalar.to_bytes())));
}
