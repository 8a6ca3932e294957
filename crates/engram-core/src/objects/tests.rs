use super::*;

#[test]
fn an_object_is_stored_once_by_content_and_read_back_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let objects = Objects::new(dir.path());
    let a = objects.put(b"the state").expect("put");
    assert!(a.new);
    assert_eq!(a.size, 9);
    assert_eq!(a.checksum, Checksum::of(b"the state"));
    let again = objects.put(b"the state").expect("again");
    assert_eq!((again.checksum, again.new), (a.checksum, false));
    assert_eq!(objects.read(&a.checksum, 100).expect("read"), b"the state");
    // Nothing is left in tmp/.
    let tmp: Vec<_> = std::fs::read_dir(dir.path().join("objects/tmp"))
        .expect("tmp")
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");
    // A damaged file is a typed error, never wrong bytes.
    let hex = a.checksum.to_hex();
    let path = dir.path().join("objects").join(&hex[..2]).join(&hex[2..]);
    std::fs::write(&path, b"the stale").expect("damage");
    assert_eq!(
        objects.read(&a.checksum, 100).expect_err("bad").code(),
        "corrupt_state"
    );
    assert_eq!(
        objects.verify(&a.checksum).expect_err("bad").code(),
        "corrupt_state"
    );
    std::fs::remove_file(&path).expect("rm");
    assert_eq!(
        objects.read(&a.checksum, 100).expect_err("gone").code(),
        "corrupt_state"
    );
    assert!(!objects.contains(&a.checksum));
}

#[test]
fn a_state_written_past_several_early_writebacks_reads_back_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let objects = Objects::new(dir.path());
    let mut w = objects.writer(u64::MAX).expect("writer");
    let mut all = Vec::new();
    // 40 MiB in 1 MiB pieces: two early writebacks start on the way.
    for i in 0..40u32 {
        let piece: Vec<u8> = (0..1u32 << 20).map(|j| (j ^ i) as u8).collect();
        w.write(&piece).expect("write");
        all.extend_from_slice(&piece);
    }
    assert!(
        w.early_sync.is_some(),
        "writeback started beside the writing"
    );
    let info = w.finish().expect("finish");
    assert_eq!(info.size, all.len() as u64);
    assert_eq!(info.checksum, Checksum::of(&all));
    assert_eq!(objects.read(&info.checksum, u64::MAX).expect("read"), all);
    // A writer dropped with writeback under way leaves nothing behind.
    let mut w = objects.writer(u64::MAX).expect("writer");
    w.write(&vec![7u8; 20 << 20]).expect("write");
    drop(w);
    let tmp = std::fs::read_dir(dir.path().join("objects/tmp"))
        .expect("tmp")
        .count();
    assert_eq!(tmp, 0);
}

#[test]
fn a_writer_past_its_limit_or_dropped_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let objects = Objects::new(dir.path());
    let mut w = objects.writer(10).expect("writer");
    w.write(b"0123456789").expect("within");
    assert_eq!(w.write(b"x").expect_err("over").code(), "too_large");
    drop(w);
    let mut w = objects.writer(10).expect("writer");
    w.write(b"abc").expect("write");
    drop(w); // a client that went away mid-upload
    let left: Vec<_> = std::fs::read_dir(dir.path().join("objects/tmp"))
        .expect("tmp")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn collection_keeps_referenced_objects_and_young_temporary_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let objects = Objects::new(dir.path());
    let kept = objects.put(b"kept").expect("put");
    let unreferenced = objects.put(b"unreferenced").expect("put");
    // Writes in progress: one just begun, one left long ago.
    let mut young = objects.writer(100).expect("writer");
    young.write(b"in progress").expect("write");
    let mut old = objects.writer(100).expect("writer");
    old.write(b"abandoned").expect("write");
    let old_tmp = old.tmp.clone();
    std::mem::forget(old); // as if its process had died
    let past = std::time::SystemTime::now() - GC_GRACE - Duration::from_secs(60);
    File::options()
        .write(true)
        .open(&old_tmp)
        .and_then(|f| f.set_modified(past))
        .expect("age");
    let keep = BTreeSet::from([kept.checksum]);
    assert_eq!(objects.collect(&keep).expect("gc"), 2);
    assert!(objects.contains(&kept.checksum));
    assert!(
        !objects.contains(&unreferenced.checksum),
        "no row names it: it goes at once (placing happens under the same lock)"
    );
    assert!(!old_tmp.exists(), "the abandoned write went");
    assert!(young.tmp.exists(), "the write in progress stays");
    young.write(b" and done").expect("write");
    let done = young.finish().expect("finish");
    assert_eq!(
        objects.read(&done.checksum, 100).expect("read"),
        b"in progress and done"
    );
}

#[test]
fn a_pending_object_is_placed_even_if_its_twin_was_removed_meanwhile() {
    let dir = tempfile::tempdir().expect("tempdir");
    let objects = Objects::new(dir.path());
    let twin = objects.put(b"same content").expect("put");
    let mut w = objects.writer(100).expect("writer");
    w.write(b"same content").expect("write");
    // Finished while the twin is there: no fsync, not placed yet.
    let pending = w.finish_pending().expect("pending");
    assert_eq!(pending.checksum(), twin.checksum);
    // The twin is removed (no row named it) before this save commits.
    assert!(objects.remove(&twin.checksum).expect("remove"));
    let placed = pending.place().expect("place");
    assert!(placed.new, "its own copy is put in place");
    assert_eq!(
        objects.read(&placed.checksum, 100).expect("read"),
        b"same content"
    );
    // Placed again with the object there: nothing added, no tmp left.
    let mut w = objects.writer(100).expect("writer");
    w.write(b"same content").expect("write");
    assert!(
        !w.finish_pending()
            .expect("pending")
            .place()
            .expect("place")
            .new
    );
    let tmp_left = std::fs::read_dir(dir.path().join("objects/tmp"))
        .expect("tmp")
        .count();
    assert_eq!(tmp_left, 0);
    // A pending object dropped unplaced leaves nothing.
    let mut w = objects.writer(100).expect("writer");
    w.write(b"never committed").expect("write");
    drop(w.finish_pending().expect("pending"));
    let tmp_left = std::fs::read_dir(dir.path().join("objects/tmp"))
        .expect("tmp")
        .count();
    assert_eq!(tmp_left, 0);
    assert!(!objects.contains(&Checksum::of(b"never committed")));
}

#[test]
fn a_new_slot_file_whose_entry_was_not_made_durable_does_not_outlive_its_save() {
    // A slot file that exists is only fdatasynced by the next save into
    // it: one whose directory entry never became durable must not be
    // left for that save to commit.
    let dir = tempfile::tempdir().expect("tempdir");
    let objects = Objects::new(dir.path());
    let path = |k: u8| dir.path().join(SLOTS).join("q").join(k.to_string());
    // Cut off before its end.
    let mut w = objects.slot_writer("q", 0, 1 << 20).expect("writer");
    w.write(b"half a state").expect("write");
    drop(w);
    assert!(!path(0).exists(), "a cut-off save's new file goes");
    // Finished, but nothing kept (the same bytes are live elsewhere):
    // not made durable, so it goes when dropped.
    let mut w = objects.slot_writer("q", 1, 1 << 20).expect("writer");
    w.write(b"the live bytes").expect("write");
    let same = Checksum::of(b"the live bytes");
    let unchanged = w.finish_slot(Some(same)).expect("finish");
    assert!(!unchanged.is_durable() && path(1).exists());
    drop(unchanged);
    assert!(!path(1).exists(), "an unchanged save's new file goes");
    // A lent slot whose save fails (too large here) leaves no file.
    let lent = objects.lease_slot("q", 2, "abc").expect("lend");
    std::fs::write(lent.path(), vec![7u8; 100]).expect("the learner writes");
    let err = objects.take_leased_slot(lent, 10).expect_err("too large");
    assert_eq!(err.code(), "too_large");
    assert!(!path(2).exists(), "a failed lent save's new file goes");
    // Made durable: it stays, and a later failed save into it (no
    // longer new, its entry durable) leaves it where it is.
    let mut w = objects.slot_writer("q", 3, 1 << 20).expect("writer");
    w.write(b"kept").expect("write");
    let kept = w.finish_slot(None).expect("finish");
    assert!(kept.is_durable());
    drop(kept);
    assert!(path(3).exists());
    let mut w = objects.slot_writer("q", 3, 1 << 20).expect("writer");
    w.write(b"cut").expect("write");
    drop(w);
    assert!(path(3).exists(), "an existing slot file stays");
}

#[test]
fn a_slot_is_overwritten_in_place_and_a_cut_makes_it_the_object_it_holds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let objects = Objects::new(dir.path());
    let write = |bytes: &[u8], unchanged_from: Option<Checksum>| {
        let mut w = objects.slot_writer("q", 1, 1 << 20).expect("writer");
        for chunk in bytes.chunks(1000) {
            w.write(chunk).expect("write");
        }
        w.finish_slot(unchanged_from).expect("finish")
    };
    let long: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let first = write(&long, None);
    assert!(first.is_durable());
    let path = dir.path().join(SLOTS).join("q").join("1");
    assert_eq!(std::fs::read(&path).expect("slot"), long);
    let c1 = first.checksum();
    // A shorter state overwrites it and the file is cut to its size.
    let short = b"a shorter state".to_vec();
    let second = write(&short, None);
    assert_eq!(std::fs::read(&path).expect("slot"), short);
    assert_eq!(
        objects.read_slot("q", 1, &c1, u64::MAX).expect("read"),
        None,
        "not what it held"
    );
    let c2 = second.checksum();
    assert_eq!(
        objects.read_slot("q", 1, &c2, u64::MAX).expect("read"),
        Some(short.clone())
    );
    assert_eq!(
        objects.read_slot("q", 1, &c2, 3).expect("read"),
        None,
        "past the limit"
    );
    assert_eq!(
        objects.read_slot("q", 0, &c2, u64::MAX).expect("read"),
        None,
        "no such slot"
    );
    // The same bytes as the live state: not made durable again, unless asked.
    let mut same = write(&short, Some(c2));
    assert!(!same.is_durable());
    same.make_durable().expect("durable");
    assert!(same.is_durable());
    // A cut: the slot's file becomes the object (renamed, not copied).
    assert!(objects.adopt_slot("q", 1, &c2, &[]).expect("adopt"));
    assert!(!path.exists(), "the slot's file moved");
    assert_eq!(objects.read(&c2, u64::MAX).expect("object"), short);
    assert!(
        !objects.adopt_slot("q", 1, &c2, &[]).expect("again"),
        "stored already"
    );
    // A slot that does not hold the state is left alone.
    write(&long, None);
    assert!(
        !objects
            .adopt_slot("q", 1, &Checksum::of(b"other"), &[])
            .expect("adopt")
    );
    assert_eq!(std::fs::read(&path).expect("slot"), long);
}

#[test]
fn a_slot_proven_off_the_lock_is_adopted_unhashed_only_while_it_is_the_same_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let objects = Objects::new(dir.path());
    let write = |bytes: &[u8]| {
        let mut w = objects.slot_writer("q", 1, 1 << 20).expect("writer");
        w.write(bytes).expect("write");
        w.finish_slot(None).expect("finish").checksum()
    };
    let a = write(b"state a");
    let proof = objects
        .prove_slot("q", 1, &a)
        .expect("prove")
        .expect("holds a");
    assert_eq!(
        objects
            .prove_slot("q", 1, &Checksum::of(b"x"))
            .expect("prove"),
        None,
        "it does not hold that"
    );
    assert_eq!(
        objects.prove_slot("q", 2, &a).expect("prove"),
        None,
        "no file"
    );
    // Overwritten since: the proof no longer holds, the slot is hashed
    // again and, holding other bytes, left alone. (Another length: the
    // file times tick coarsely — a few ms — so a rewrite of the same
    // length within one tick keeps the stamp; see prove_slot.)
    let b = write(b"state b, longer");
    assert!(
        !objects
            .adopt_slot("q", 1, &a, std::slice::from_ref(&proof))
            .expect("adopt")
    );
    assert!(!objects.contains(&a));
    // A proof of what it holds now: adopted.
    let proof_b = objects
        .prove_slot("q", 1, &b)
        .expect("prove")
        .expect("holds b");
    assert!(
        objects
            .adopt_slot("q", 1, &b, &[proof, proof_b])
            .expect("adopt")
    );
    assert_eq!(
        objects.read(&b, u64::MAX).expect("object"),
        b"state b, longer"
    );
}
