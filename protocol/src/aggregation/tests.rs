use super::*;
use crate::entropy::DangerousSeededEntropy;
use crate::keys::RecipientKeys;
use proptest::prelude::*;

struct Office {
    id: String,
    keys: RecipientKeys,
    mask_secret: Secret,
    self_secret: Secret,
    key: MonthKey,
    holders: Vec<String>,
    /// Shares of its secrets, by holder id: (mask, self).
    shares: Vec<(String, Share, Share)>,
}

fn month() -> Month {
    Month::parse("2026-10").unwrap()
}

fn offices(n: usize, e: &mut DangerousSeededEntropy) -> Vec<Office> {
    let ids: Vec<String> = (0..n).map(|i| format!("office-{i:02}")).collect();
    ids.iter()
        .map(|id| {
            let keys = RecipientKeys::generate(e).unwrap();
            let holders: Vec<String> = ids.iter().filter(|h| *h != id).cloned().collect();
            let (mask_secret, self_secret, key) =
                month_key(id, month(), &holders, keys.signing(), e).unwrap();
            let n = u16::try_from(holders.len()).unwrap();
            let t = threshold_for(holders.len());
            let a = shamir::split(&mask_secret, t, n, e).unwrap();
            let b = shamir::split(&self_secret, t, n, e).unwrap();
            let shares = holders
                .iter()
                .cloned()
                .zip(a.into_iter().zip(b))
                .map(|(h, (a, b))| (h, a, b))
                .collect();
            Office {
                id: id.clone(),
                keys,
                mask_secret,
                self_secret,
                key,
                holders,
                shares,
            }
        })
        .collect()
}

fn share_of<'a>(office: &'a Office, holder: &str) -> Option<&'a (String, Share, Share)> {
    office.shares.iter().find(|(h, _, _)| h == holder)
}

/// Runs a whole round: every office in `sending` masks its counts; the
/// holders in `answering` reveal; the coordinator rebuilds and unmasks.
fn run(counts: &[Vec<u32>], sending: &[usize], answering: &[usize], seed: &[u8]) -> Vec<u32> {
    let mut e = DangerousSeededEntropy::new(seed);
    let all = offices(counts.len(), &mut e);
    let cohort: Vec<(String, x25519::PublicKey)> = all
        .iter()
        .map(|o| (o.id.clone(), x25519::PublicKey(o.key.mask_key)))
        .collect();
    let len = counts[0].len();
    let mut masked_sum = vec![0u32; len];
    for i in sending {
        let o = &all[*i];
        o.key
            .verify(&o.id, &o.keys.signing().verifying_key())
            .unwrap();
        let y = mask(
            &counts[*i],
            month(),
            &o.id,
            &o.self_secret,
            &o.mask_secret,
            &cohort,
        )
        .unwrap();
        assert_ne!(y, counts[*i], "a masked vector is not the counts");
        add(&mut masked_sum, &y, true);
    }
    // Each answering holder reveals, per office, one kind of share.
    let mut rebuilt = Rebuilt {
        survivors: vec![],
        dropped: vec![],
    };
    for (i, o) in all.iter().enumerate() {
        let survived = sending.contains(&i);
        let shares: Vec<Share> = answering
            .iter()
            .filter(|h| **h != i)
            .filter_map(|h| share_of(o, &all[*h].id))
            .map(|(_, a, b)| if survived { b.clone() } else { a.clone() })
            .take(usize::from(o.key.threshold))
            .collect();
        let secret = shamir::combine(&shares).unwrap();
        if survived {
            assert_eq!(commitment(&secret), o.key.commitment);
            rebuilt
                .survivors
                .push((&o.id, x25519::PublicKey(o.key.mask_key), secret));
        } else {
            assert_eq!(
                mask_key(&secret).unwrap().public_key().as_bytes(),
                &o.key.mask_key
            );
            rebuilt.dropped.push((&o.id, secret));
        }
    }
    let _ = &all[0].holders;
    unmask(&masked_sum, month(), &rebuilt).unwrap()
}

fn sum(counts: &[Vec<u32>], which: &[usize]) -> Vec<u32> {
    let mut out = vec![0u32; counts[0].len()];
    for i in which {
        add(&mut out, &counts[*i], true);
    }
    out
}

#[test]
fn the_sum_comes_out_with_everyone_and_with_offices_missing() {
    let layout = Layout {
        regions: vec!["BR-RR".into(), "PE-LIM".into()],
    };
    let counts: Vec<Vec<u32>> = (0..5u32)
        .map(|i| (0..layout.len() as u32).map(|j| (i * 7 + j) % 5).collect())
        .collect();
    let everyone = [0, 1, 2, 3, 4];
    assert_eq!(
        run(&counts, &everyone, &everyone, b"all"),
        sum(&counts, &everyone)
    );
    // Two did not send, one of them answers as a holder and the other is
    // gone: every office still has 3 holders answering (its threshold, of
    // 4 holders).
    assert_eq!(
        run(&counts, &[0, 2, 4], &[0, 1, 2, 4], b"two-gone"),
        sum(&counts, &[0, 2, 4])
    );
    // An office that did not send still answers as a holder.
    assert_eq!(
        run(&counts, &[1, 2, 3], &[0, 1, 2, 3], b"gone-but-answers"),
        sum(&counts, &[1, 2, 3])
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn any_survivors_give_their_exact_sum(seed in any::<u64>(), n in 3usize..7, drop_mask in any::<u8>()) {
        let counts: Vec<Vec<u32>> = (0..n)
            .map(|i| (0..40u32).map(|j| (j * 13 + i as u32 * 31 + seed as u32) % 9).collect())
            .collect();
        let sending: Vec<usize> = (0..n).filter(|i| drop_mask & (1 << i) == 0).collect();
        prop_assume!(sending.len() >= MIN_SURVIVORS);
        let everyone: Vec<usize> = (0..n).collect();
        prop_assert_eq!(
            run(&counts, &sending, &everyone, &seed.to_le_bytes()),
            sum(&counts, &sending)
        );
    }
}

#[test]
fn the_layout_puts_every_row_in_its_place() {
    let layout = Layout {
        regions: vec!["BR-RR".into(), "PE-LIM".into()],
    };
    assert_eq!(row_width(), 25);
    assert_eq!(layout.len(), 3 * 4 * 25 + 4);
    assert_eq!(
        layout.row_start(Some("BR-RR"), Some(PlaceSetting::Border)),
        0
    );
    assert_eq!(layout.row_start(Some("PE-LIM"), None), (4 + 3) * 25);
    assert_eq!(
        layout.row_start(Some("CO-ANT"), Some(PlaceSetting::Urban)),
        layout.row_start(None, Some(PlaceSetting::Urban)),
        "a region the layout does not name counts as other places"
    );
    assert_eq!(layout.context_start(), 300);
    assert!(layout.validate().is_ok());
    let unsorted = Layout {
        regions: vec!["PE-LIM".into(), "BR-RR".into()],
    };
    assert!(unsorted.validate().is_err());
}

#[test]
fn messages_are_signed_checked_and_refused_when_altered() {
    let mut e = DangerousSeededEntropy::new(b"messages");
    let all = offices(4, &mut e);
    let o = &all[0];
    let keys = Message::Keys(Keys {
        office: o.id.clone(),
        holders: o.holders.clone(),
        months: vec![o.key.clone()],
    });
    let signed = SignedMessage::sign(&keys, o.keys.signing()).unwrap();
    let bytes = signed.to_json().unwrap();
    let back = SignedMessage::from_json(&bytes).unwrap();
    assert_eq!(
        back.verify(&o.keys.signing().verifying_key()).unwrap(),
        keys
    );
    // Another office's key does not verify it.
    assert!(back.verify(&all[1].keys.signing().verifying_key()).is_err());
    // Altered bytes.
    let mut text = String::from_utf8(bytes).unwrap();
    text = text.replacen("\"v\":1", "\"v\":2", 1);
    assert!(SignedMessage::from_json(text.as_bytes()).is_err());
    // A message naming another office than its signer.
    let shares = Message::Shares(Shares {
        office: all[1].id.clone(),
        holder: o.id.clone(),
        months: vec![MonthShares {
            month: month(),
            x: 1,
            mask: [0; 32],
            own: [0; 32],
        }],
    });
    let mut forged = SignedMessage::sign(&shares, o.keys.signing()).unwrap();
    forged.from = o.id.clone();
    assert!(forged.verify(&o.keys.signing().verifying_key()).is_err());
    // A key with a threshold that lets two disjoint sets rebuild.
    let mut weak = o.key.clone();
    weak.threshold = 1;
    let bad = Message::Keys(Keys {
        office: o.id.clone(),
        holders: o.holders.clone(),
        months: vec![weak],
    });
    assert!(bad.validate().is_err());
    // Too few survivors; unsorted survivors.
    let few = Message::Unmask(Unmask {
        month: month(),
        cohort: [0; 32],
        survivors: vec!["a".into(), "b".into()],
    });
    assert!(few.validate().is_err());
    let unsorted = Message::Unmask(Unmask {
        month: month(),
        cohort: [0; 32],
        survivors: vec!["c".into(), "b".into(), "a".into()],
    });
    assert!(unsorted.validate().is_err());
    // A month key signed by one office does not pass as another's.
    assert!(
        o.key
            .verify(&all[1].id, &o.keys.signing().verifying_key())
            .is_err()
    );
}

#[test]
fn a_masked_vector_travels_as_little_endian_base64() {
    let m = Message::Masked(Masked {
        office: "pe-lima".into(),
        month: month(),
        cohort: [7; 32],
        vector: vec![1, 0xffff_ffff, 3],
    });
    let json = serde_json::to_string(&m).unwrap();
    assert!(json.contains("\"vector\":\"AQAAAP____8DAAAA\""), "{json}");
    let back: Message = serde_json::from_str(&json).unwrap();
    assert_eq!(back, m);
    let odd = json.replace("AQAAAP____8DAAAA", "AQAAAP____8DAA");
    assert!(serde_json::from_str::<Message>(&odd).is_err());
}

#[test]
fn the_largest_messages_fit_one_envelope() {
    let mut e = DangerousSeededEntropy::new(b"largest");
    let key = RecipientKeys::generate(&mut e).unwrap();
    let layout = Layout {
        regions: (0..MAX_LAYOUT_REGIONS)
            .map(|i| format!("XX-{i:03}"))
            .collect(),
    };
    layout.validate().unwrap();
    let office = "o".repeat(64);
    let masked = Message::Masked(Masked {
        office: office.clone(),
        month: month(),
        cohort: [0xff; 32],
        vector: vec![u32::MAX; layout.len()],
    });
    SignedMessage::sign(&masked, key.signing()).unwrap();
    // A round of 64 offices with 64-character ids.
    let holders: Vec<String> = (0..MAX_COHORT - 1).map(|i| format!("{i:0>64}")).collect();
    let (_, _, k) = month_key(&office, month(), &holders, key.signing(), &mut e).unwrap();
    let mut cohort: Vec<Member> = (0..MAX_COHORT)
        .map(|i| Member {
            office: format!("{i:0>64}"),
            key: k.clone(),
        })
        .collect();
    cohort.sort_by(|a, b| a.office.cmp(&b.office));
    let round = Message::Round(Round {
        month: month(),
        layout,
        cohort,
    });
    SignedMessage::sign(&round, key.signing()).unwrap();
    // A year of keys with 63 holders, and a reveal for 63 offices.
    let keys = Message::Keys(Keys {
        office: office.clone(),
        holders: holders.clone(),
        months: (1..=12)
            .map(|m| {
                let mut k = k.clone();
                k.month = Month::parse(&format!("2026-{m:02}")).unwrap();
                k
            })
            .collect(),
    });
    SignedMessage::sign(&keys, key.signing()).unwrap();
    let reveal = Message::Reveal(Reveal {
        office,
        month: month(),
        survivors: [0; 32],
        own: holders
            .iter()
            .map(|h| Revealed {
                office: h.clone(),
                x: 1,
                y: [0xff; 32],
            })
            .collect(),
        mask: vec![],
    });
    SignedMessage::sign(&reveal, key.signing()).unwrap();
}
