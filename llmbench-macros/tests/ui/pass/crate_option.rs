//! `crate = "..."` finds llmbench under another name: nothing in the output
//! names `llmbench` or `linkme` directly.

extern crate llmbench as lb;

/// Renamed.
#[lb::llm_bench(crate = "lb")]
fn chat() -> lb::Bench {
    lb::Bench::new()
}

mod inner {
    /// Through a path.
    #[crate::lb::llm_bench(crate = "crate::lb", name = "inner")]
    fn chat() -> crate::lb::Result<crate::lb::Bench> {
        Ok(crate::lb::Bench::new())
    }
}

fn main() {
    for (name, description) in [("chat", "Renamed."), ("inner", "Through a path.")] {
        let entry = lb::__private::BENCHES
            .iter()
            .find(|entry| entry.name == name)
            .unwrap_or_else(|| panic!("`{name}` is not registered"));
        assert_eq!(entry.description, description);
        assert!((entry.make)().is_ok());
    }
}
