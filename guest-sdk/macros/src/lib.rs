//! The `#[leakhost_guest::test]` attribute. Use it through `leakhost-guest`, which re-exports it;
//! the generated code names `::leakhost_guest` and nothing else.
//!
//! Written against `proc_macro` alone, without syn or quote: the attribute only needs to find the
//! function's name and its parameters' types, and a suite's first build stays a few seconds.

#![warn(missing_docs)]

use proc_macro::{Delimiter, Spacing, TokenStream, TokenTree};

/// Registers a function as a leakhost test, with no declare list.
///
/// ```text
/// #[leakhost_guest::test]
/// fn adds() { leakhost_guest::check_eq!(1 + 1, 2); }
///
/// #[leakhost_guest::test(layer = Database)]
/// fn queries(db: &mut Database) -> leakhost_guest::TestResult { /* ... */ Ok(()) }
/// ```
///
/// Arguments, all optional: `layer = TYPE` (a type implementing `leakhost_guest::LayerState`; the
/// test runs in that layer) and `name = "..."` (the reported name; by default the function's module
/// path inside the crate and its name, as libtest names tests). Parameters are layer states, `&T` or
/// `&mut T`; without `layer`, the first parameter's type is the layer. The function returns `()` or
/// a `TestResult`.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    let expanded = match expand(args, item.clone()) {
        Ok(code) => code,
        Err(message) => format!("::core::compile_error!({message:?});"),
    };
    let generated: TokenStream = expanded.parse().unwrap_or_else(|_| {
        "::core::compile_error!(\"leakhost_guest::test generated invalid code; please report it\");"
            .parse()
            .unwrap_or_default()
    });
    let mut out = item;
    out.extend(generated);
    out
}

/// What the attribute's arguments say.
#[derive(Default)]
struct Args {
    layer: Option<String>,
    name: Option<String>,
}

/// A parameter: the state type it borrows and whether mutably.
struct Param {
    ty: String,
    mutable: bool,
}

fn expand(args: TokenStream, item: TokenStream) -> Result<String, String> {
    let args = parse_args(args)?;
    let (name, params) = parse_fn(item)?;
    let layer = args.layer.or_else(|| params.first().map(|p| p.ty.clone()));
    let (reported, explicit) = match args.name {
        Some(literal) => (literal, true),
        None => (format!("{name:?}"), false),
    };
    let mut call_args = Vec::new();
    for (i, p) in params.iter().enumerate() {
        call_args.push(if p.mutable { format!("__state{i}") } else { format!("&*__state{i}") });
    }
    let mut body = format!("::leakhost_guest::IntoTestResult::into_test_result({name}({}))", call_args.join(", "));
    for (i, p) in params.iter().enumerate().rev() {
        body = format!("::leakhost_guest::__private::with_state::<{ty}>(|__state{i}: &mut {ty}| {body})", ty = p.ty);
    }
    let layer_fn = match &layer {
        Some(ty) => format!(
            "fn __leakhost_layer(suite: &mut ::leakhost_guest::Suite) -> ::leakhost_guest::LayerId {{ \
                 suite.state_layer::<{ty}>() }}"
        ),
        None => String::new(),
    };
    let layer_field = if layer.is_some() { "::core::option::Option::Some(__leakhost_layer)" } else { "None" };
    // A constructor in .init_array: wasm-ld runs it from __wasm_call_ctors, which suite!'s
    // _initialize calls before the registry is built. wasm32 has no section start/stop symbols,
    // so this is the dependable way to collect items without a list.
    // Only the constructor is wasm32-only: natively the registration is still compiled (allowed
    // dead), so a native `cargo check` type-checks it and sees the test and its layer as used.
    Ok(format!(
        "const _: () = {{
            fn __leakhost_body() -> ::leakhost_guest::TestResult {{ {body} }}
            {layer_fn}
            #[allow(dead_code)]
            static __LEAKHOST_TEST: ::leakhost_guest::__private::Registration =
                ::leakhost_guest::__private::Registration {{
                    name: {reported},
                    explicit_name: {explicit},
                    module: ::core::module_path!(),
                    line: ::core::line!(),
                    layer: {layer_field},
                    body: __leakhost_body,
                }};
            #[cfg(target_arch = \"wasm32\")]
            extern \"C\" fn __leakhost_register() {{
                ::leakhost_guest::__private::register(&__LEAKHOST_TEST);
            }}
            #[cfg(target_arch = \"wasm32\")]
            #[used]
            #[unsafe(link_section = \".init_array\")]
            static __LEAKHOST_CTOR: extern \"C\" fn() = __leakhost_register;
        }};"
    ))
}

/// Splits a token list at top-level commas; commas inside `<...>` belong to a type.
fn split_commas(tokens: Vec<TokenTree>) -> Vec<Vec<TokenTree>> {
    let mut parts = vec![Vec::new()];
    let mut depth = 0i32;
    for token in tokens {
        if let TokenTree::Punct(p) = &token {
            match p.as_char() {
                '<' => depth += 1,
                // `->` inside a type (fn pointers) is no closing bracket.
                '>' if !parts.last().is_some_and(|part| ends_with_joint(part, '-')) => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(Vec::new());
                    continue;
                }
                _ => {}
            }
        }
        if let Some(part) = parts.last_mut() {
            part.push(token);
        }
    }
    parts.retain(|part| !part.is_empty());
    parts
}

fn ends_with_joint(part: &[TokenTree], c: char) -> bool {
    matches!(part.last(), Some(TokenTree::Punct(p)) if p.as_char() == c && p.spacing() == Spacing::Joint)
}

fn parse_args(args: TokenStream) -> Result<Args, String> {
    let mut out = Args::default();
    for part in split_commas(args.into_iter().collect()) {
        let key = match part.first() {
            Some(TokenTree::Ident(key)) => key.to_string(),
            _ => return Err(ARGS_USAGE.into()),
        };
        if !matches!(part.get(1), Some(TokenTree::Punct(p)) if p.as_char() == '=') || part.len() < 3 {
            return Err(ARGS_USAGE.into());
        }
        let value: TokenStream = part[2..].iter().cloned().collect();
        match key.as_str() {
            "layer" => out.layer = Some(value.to_string()),
            "name" => match &part[2..] {
                [TokenTree::Literal(lit)] if lit.to_string().starts_with('"') => out.name = Some(lit.to_string()),
                _ => return Err("leakhost_guest::test: `name` takes a string literal, e.g. name = \"adds\"".into()),
            },
            other => return Err(format!("leakhost_guest::test: unknown argument `{other}`; {ARGS_USAGE}")),
        }
    }
    Ok(out)
}

const ARGS_USAGE: &str =
    "leakhost_guest::test takes `layer = StateType` and `name = \"...\"`, e.g. #[leakhost_guest::test(layer = Database)]";

/// Finds the function's name and parameters.
fn parse_fn(item: TokenStream) -> Result<(String, Vec<Param>), String> {
    let tokens: Vec<TokenTree> = item.into_iter().collect();
    let at = tokens
        .iter()
        .position(|t| matches!(t, TokenTree::Ident(i) if i.to_string() == "fn"))
        .ok_or("#[leakhost_guest::test] goes on a function")?;
    if tokens[..at].iter().any(|t| matches!(t, TokenTree::Ident(i) if i.to_string() == "async")) {
        return Err("#[leakhost_guest::test] functions cannot be async".into());
    }
    let name = match tokens.get(at + 1) {
        Some(TokenTree::Ident(name)) => name.to_string(),
        _ => return Err("#[leakhost_guest::test] goes on a function".into()),
    };
    let params = match tokens.get(at + 2) {
        Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis => g.stream(),
        Some(TokenTree::Punct(p)) if p.as_char() == '<' => {
            return Err(format!("#[leakhost_guest::test] fn {name}: a test cannot be generic"))
        }
        _ => return Err("#[leakhost_guest::test] goes on a function".into()),
    };
    let params = split_commas(params.into_iter().collect())
        .into_iter()
        .map(|param| parse_param(&name, param))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((name, params))
}

/// `pat: &T` or `pat: &mut T` (a lifetime after `&` is allowed).
fn parse_param(test: &str, tokens: Vec<TokenTree>) -> Result<Param, String> {
    let wrong = || {
        format!(
            "#[leakhost_guest::test] fn {test}: parameters are layer states, `&T` or `&mut T` with T: \
             leakhost_guest::LayerState"
        )
    };
    // The pattern ends at the first lone `:` (a `::` is two joint colons).
    let colon = (0..tokens.len())
        .find(|&i| {
            let is_colon = |j: usize| matches!(tokens.get(j), Some(TokenTree::Punct(p)) if p.as_char() == ':');
            let joint = matches!(&tokens[i], TokenTree::Punct(p) if p.spacing() == Spacing::Joint);
            is_colon(i) && !(joint && is_colon(i + 1)) && !(i > 0 && is_colon(i - 1))
        })
        .ok_or_else(wrong)?;
    let mut rest = &tokens[colon + 1..];
    match rest.first() {
        Some(TokenTree::Punct(p)) if p.as_char() == '&' => rest = &rest[1..],
        _ => return Err(wrong()),
    }
    if let [TokenTree::Punct(p), TokenTree::Ident(_), tail @ ..] = rest {
        if p.as_char() == '\'' {
            rest = tail;
        }
    }
    let mutable = matches!(rest.first(), Some(TokenTree::Ident(i)) if i.to_string() == "mut");
    if mutable {
        rest = &rest[1..];
    }
    if rest.is_empty() {
        return Err(wrong());
    }
    let ty: TokenStream = rest.iter().cloned().collect();
    Ok(Param { ty: ty.to_string(), mutable })
}
