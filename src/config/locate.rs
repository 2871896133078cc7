//! Finds where an input's or output's option is written, for the errors found only when the
//! plugin is built (a bad regex, a port out of range together with another option…), after
//! the YAML parser and its positions are gone.
//!
//! A plain scan of block-style YAML by indentation: the top-level `inputs:` or `outputs:`
//! key, its `index`-th list item, and in that item the line that starts with `option:`.
//! Flow-style lists (`inputs: [a, b]`) have no options to point at; the list is found then.

/// The 1-based line and column of `option` in item `index` of the top-level list `section`;
/// of the item itself when the option is not written there (a default); `None` when the
/// section is not found.
pub fn locate(
    text: &str,
    section: &str,
    index: usize,
    option: Option<&str>,
) -> Option<(usize, usize)> {
    let mut lines = text.lines().enumerate().map(|(n, l)| (n + 1, l));
    let header = format!("{section}:");
    let (header_line, header_rest) =
        lines.find_map(|(n, l)| l.strip_prefix(&header).map(|rest| (n, rest.trim())))?;
    if header_rest.starts_with('[') {
        return Some((header_line, header.len() + 2));
    }
    let mut item_indent = None;
    let mut seen = 0;
    let mut item: Option<(usize, usize)> = None;
    for (n, line) in lines {
        let content = line.trim_start();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let indent = line.len() - content.len();
        if indent == 0 && !content.starts_with('-') {
            break; // the next top-level key
        }
        if content.starts_with('-') && *item_indent.get_or_insert(indent) == indent {
            if item.is_some() {
                break; // past the item we wanted, option not written
            }
            if seen == index {
                let name_at = indent + 1 + (content[1..].len() - content[1..].trim_start().len());
                item = Some((n, name_at + 1));
            }
            seen += 1;
            continue;
        }
        if let (Some(_), Some(option)) = (item, option) {
            if content
                .strip_prefix(option)
                .is_some_and(|rest| rest.trim_start().starts_with(':'))
            {
                return Some((n, indent + 1));
            }
        }
    }
    item
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
interval: 10s
inputs:
  - linux_cpu
  # a comment
  - linux_net:
      interval: 30s
      include_patterns: [\"[unclosed\"]
  -   linux_disk:
      mount_points: [/]
outputs:
  - stdout:
      format: json
";

    #[test]
    fn finds_the_option_inside_the_right_item() {
        assert_eq!(
            locate(TEXT, "inputs", 1, Some("include_patterns")),
            Some((7, 7))
        );
        assert_eq!(
            locate(TEXT, "inputs", 2, Some("mount_points")),
            Some((9, 7))
        );
        assert_eq!(locate(TEXT, "outputs", 0, Some("format")), Some((12, 7)));
    }

    #[test]
    fn an_option_not_written_points_at_its_item() {
        assert_eq!(locate(TEXT, "inputs", 0, Some("percpu")), Some((3, 5)));
        assert_eq!(
            locate(TEXT, "inputs", 1, Some("mount_points")),
            Some((5, 5))
        );
        assert_eq!(locate(TEXT, "inputs", 2, None), Some((8, 7)));
    }

    #[test]
    fn flow_lists_and_missing_sections() {
        assert_eq!(
            locate("inputs: [linux_mem, nope]\n", "inputs", 1, None),
            Some((1, 9))
        );
        assert_eq!(locate(TEXT, "secret_store", 0, None), None);
        assert_eq!(locate(TEXT, "inputs", 9, None), None);
    }
}
