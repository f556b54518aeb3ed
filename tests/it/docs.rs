//! The documentation matches the code it describes.

use std::path::Path;

/// The README's "How it is built" map names every directory and file under `src/`, so it
/// cannot fall behind the tree.
#[test]
fn the_readme_module_map_names_every_module() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let start = readme.find("## How it is built").expect("the section");
    let map = &readme[start..];
    let open = map.find("```\n").expect("the map") + 4;
    let map = &map[open..open + map[open..].find("```").expect("the map's end")];
    let words: Vec<&str> = map
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.' || c == '/'))
        .collect();
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(root.join("src")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if path.is_dir() {
            if !words.contains(&format!("{name}/").as_str()) {
                missing.push(format!("{name}/"));
            }
            for file in std::fs::read_dir(&path).unwrap() {
                let stem = file.unwrap().path().file_stem().unwrap().to_str().unwrap().to_string();
                if stem != "mod" && !words.contains(&stem.as_str()) {
                    missing.push(format!("{name}/{stem}"));
                }
            }
        } else if !matches!(name.as_str(), "lib.rs" | "main.rs") && !words.contains(&name.as_str()) {
            missing.push(name);
        }
    }
    assert!(missing.is_empty(), "not in the README's module map: {missing:?}");
}
