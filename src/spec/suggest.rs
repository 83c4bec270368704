//! "Did you mean ...?": the one place that decides whether a word a user
//! wrote is a typo of a name gt knows.

/// The candidate closest to `word`, if it is close enough to be a typo:
/// at most 2 edits (transpositions count as one), or a quarter of the
/// candidate's length for long names. Ties go to the alphabetically first
/// candidate, so the suggestion does not depend on the candidates' order.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min()
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::did_you_mean;

    #[test]
    fn a_typo_finds_its_word_and_a_stranger_finds_nothing() {
        let keys = ["address", "arch", "role"];
        assert_eq!(did_you_mean("adress", keys), Some("address"));
        assert_eq!(did_you_mean("rloe", keys), Some("role"));
        assert_eq!(did_you_mean("kubernetes", keys), None);
    }

    #[test]
    fn long_names_tolerate_more_edits_and_ties_are_alphabetical() {
        assert_eq!(
            did_you_mean("k8s_cntrl_plne", ["k8s_control_plane"]),
            Some("k8s_control_plane")
        );
        assert_eq!(did_you_mean("ab", ["bb", "ac"]), Some("ac"));
    }
}
