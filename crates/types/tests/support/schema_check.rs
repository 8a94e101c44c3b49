//! Checks values against their OpenAPI schemas (utoipa), as the node's API document
//! states them: each type's schema resolved with every component it references, under
//! JSON Schema draft 2020-12 (the dialect of OpenAPI 3.1).
//!
//! Shared by the schema tests of seisan-types, seisan-contracts and seisan-consensus
//! (they include this file by path), so all three check the same way.

#![allow(dead_code)] // each including test uses its own part

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::path::Path;
use utoipa::ToSchema;

/// Collects what is wrong across many types, so one run reports every mismatch.
#[derive(Default)]
pub struct SchemaCheck {
    /// Every component seen so far, by name: two types that share a name would be one
    /// component in the API document.
    components: BTreeMap<String, Value>,
    /// The types given samples.
    checked: BTreeSet<String>,
    failures: Vec<String>,
    /// Whether schemas are checked after [`seisan_types::schema::close_tagged_variants`],
    /// as the API document may apply it.
    close_tagged: bool,
}

impl SchemaCheck {
    /// A check of the schemas as utoipa derives them.
    pub fn new() -> SchemaCheck {
        SchemaCheck::default()
    }

    /// A check of the schemas with externally tagged enums' variant objects closed.
    pub fn closed() -> SchemaCheck {
        SchemaCheck {
            close_tagged: true,
            ..SchemaCheck::default()
        }
    }

    /// `T`'s schema and every component it references, by name.
    pub fn components_of<T: ToSchema>(&mut self) -> Map<String, Value> {
        let mut schemas = vec![(T::name().into_owned(), T::schema())];
        T::schemas(&mut schemas);
        let mut own = Map::new();
        for (name, mut schema) in schemas {
            if self.close_tagged {
                seisan_types::schema::close_tagged_variants(&mut schema);
            }
            let value = serde_json::to_value(&schema).expect("a schema serializes");
            match self.components.get(&name) {
                Some(earlier) if earlier != &value => self.failures.push(format!(
                    "two different schemas are both named {name}:\n  {earlier}\n  {value}"
                )),
                Some(_) => {}
                None => {
                    self.components.insert(name.clone(), value.clone());
                }
            }
            own.insert(name, value);
        }
        own
    }

    /// A validator of the schema at `pointer` (below `#/components/schemas/`).
    fn validator(components: &Map<String, Value>, pointer: &str) -> jsonschema::Validator {
        let document = json!({
            "$ref": format!("#/components/schemas/{pointer}"),
            "components": {"schemas": components},
        });
        jsonschema::draft202012::new(&document)
            .unwrap_or_else(|error| panic!("the schema of {pointer} does not compile: {error}"))
    }

    /// Every sample serializes to JSON that `T`'s schema accepts and that deserializes
    /// back to the sample; where the schema is a choice (`oneOf`, `enum`), the samples
    /// take every alternative, so a variant added without a sample is reported.
    pub fn samples<T>(&mut self, samples: &[T])
    where
        T: ToSchema + Serialize + DeserializeOwned + PartialEq + Debug,
    {
        let name = T::name().into_owned();
        assert!(!samples.is_empty(), "no samples of {name}");
        let components = self.components_of::<T>();
        let validator = Self::validator(&components, &name);
        let mut jsons = Vec::new();
        for sample in samples {
            let json = serde_json::to_value(sample).expect("a sample serializes");
            for error in validator.iter_errors(&json) {
                self.failures.push(format!(
                    "{name}: the schema refuses what serde writes, {json}: {error} (at {})",
                    error.instance_path()
                ));
            }
            match serde_json::from_value::<T>(json.clone()) {
                Ok(back) if &back == sample => {}
                Ok(back) => self
                    .failures
                    .push(format!("{name}: {json} reads back as {back:?}")),
                Err(error) => self
                    .failures
                    .push(format!("{name}: {json} does not read back: {error}")),
            }
            jsons.push(json);
        }
        let schema = &components[&name];
        if let Some(Value::Array(branches)) = schema.get("oneOf") {
            for (index, branch) in branches.iter().enumerate() {
                let alternative = Self::validator(&components, &format!("{name}/oneOf/{index}"));
                if !jsons.iter().any(|json| alternative.is_valid(json)) {
                    self.failures
                        .push(format!("{name}: no sample takes the alternative {branch}"));
                }
            }
        }
        if let Some(Value::Array(values)) = schema.get("enum") {
            for value in values {
                if !jsons.contains(value) {
                    self.failures
                        .push(format!("{name}: no sample is the value {value}"));
                }
            }
        }
        self.checked.insert(name);
    }

    /// `T`'s schema accepts each of `values`, and so does its deserialization.
    pub fn accepts<T>(&mut self, values: &[Value])
    where
        T: ToSchema + DeserializeOwned + Debug,
    {
        let name = T::name().into_owned();
        let components = self.components_of::<T>();
        let validator = Self::validator(&components, &name);
        for value in values {
            if !validator.is_valid(value) {
                self.failures
                    .push(format!("{name}: the schema refuses {value}"));
            }
            if let Err(error) = serde_json::from_value::<T>(value.clone()) {
                self.failures.push(format!(
                    "{name}: the schema accepts {value}, which does not deserialize: {error}"
                ));
            }
        }
    }

    /// `T`'s schema refuses each of `values`.
    pub fn refuses<T: ToSchema>(&mut self, values: &[Value]) {
        let name = T::name().into_owned();
        let components = self.components_of::<T>();
        let validator = Self::validator(&components, &name);
        for value in values {
            if validator.is_valid(value) {
                self.failures
                    .push(format!("{name}: the schema accepts {value}"));
            }
        }
    }

    /// The types that were given samples.
    pub fn checked(&self) -> &BTreeSet<String> {
        &self.checked
    }

    /// Every component seen, by name.
    pub fn components(&self) -> &BTreeMap<String, Value> {
        &self.components
    }

    /// Fails naming every type of `with_schema` (from [`schema_types_in`]) that no
    /// sample checked: a new type with a schema needs samples.
    pub fn assert_every_type_sampled(&self, with_schema: &BTreeSet<String>) {
        let unchecked: Vec<_> = with_schema.difference(&self.checked).collect();
        assert!(
            unchecked.is_empty(),
            "types with a schema but no samples: {unchecked:?}"
        );
    }

    /// Reports every failure at once.
    pub fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "{} schema mismatches:\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
    }
}

/// The names of the types in the Rust files of `dir` that have an OpenAPI schema:
/// those deriving `ToSchema` (directly or through the id macros) and those
/// implementing it by hand.
pub fn schema_types_in(dir: &Path) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("source directory")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("source file");
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        let mut deriving = false;
        let mut in_id_macro = false;
        for line in &lines {
            if in_id_macro {
                // The first line of an id macro's call that is no attribute, doc or
                // `@derive` list names the id.
                if line.starts_with("///") || line.starts_with("#[") || line.starts_with('@') {
                    continue;
                }
                let name: String = line
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    names.insert(name);
                }
                in_id_macro = false;
                continue;
            }
            if *line == "id_newtype!(" || *line == "sequence_id!(" {
                in_id_macro = true;
                continue;
            }
            if line.contains("ToSchema") && (line.starts_with("#[derive") || line.ends_with(',')) {
                deriving = true;
                continue;
            }
            if let Some(rest) = line.strip_prefix("impl utoipa::ToSchema for ") {
                // A macro's `$name` is named where the macro is called.
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    names.insert(name);
                }
                continue;
            }
            if deriving {
                for keyword in ["pub struct ", "pub enum "] {
                    if let Some(rest) = line.strip_prefix(keyword) {
                        let name: String = rest
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .collect();
                        // A macro's `$name` is named where the macro is called.
                        if !name.is_empty() {
                            names.insert(name);
                        }
                        deriving = false;
                    }
                }
            }
        }
        // Hex byte strings and integer ids get their schemas from `hex_schema!(Name, ...)`
        // and `id_schema!(Name, ...)`.
        for (index, line) in lines.iter().enumerate() {
            let call = line
                .strip_prefix("hex_schema!(")
                .or_else(|| line.strip_prefix("crate::bytes::hex_schema!("))
                .or_else(|| line.strip_prefix("crate::schema::id_schema!("));
            if let Some(rest) = call {
                let rest = if rest.is_empty() {
                    lines.get(index + 1).copied().unwrap_or_default()
                } else {
                    rest
                };
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    names.insert(name);
                }
            }
        }
    }
    names
}
