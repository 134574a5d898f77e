#!/bin/sh
# cmake --install puts every tool, man page and completion where a
# distribution would, under any prefix.
. "$MDM_SOURCE_DIR/tests/cmd/lib.sh"
: "${MDM_BUILD_DIR:?}"
p=$T/prefix
expect 0 "cmake --install into a fresh prefix" cmake --install "$MDM_BUILD_DIR" --prefix "$p"
for tool in "$MDM_BIN"/mdm-*; do
	name=${tool##*/}
	check "$name installed in bin/" test -x "$p/bin/$name"
	check "$name man page installed" sh -c "ls '$p'/share/man/man[18]/'$name'.[18] >/dev/null"
	check "$name bash completion installed" test -f "$p/share/bash-completion/completions/$name"
	check "$name zsh completion installed" test -f "$p/share/zsh/vendor-completions/_$name"
	check "$name fish completion installed" test -f "$p/share/fish/vendor_completions.d/$name.fish"
done
check "mdm.7 installed" test -f "$p/share/man/man7/mdm.7"
check "mdm-state.5 installed" test -f "$p/share/man/man5/mdm-state.5"
check "the installed tool runs" "$p/bin/mdm-certs" --version
check "no test or fuzz binaries installed" sh -c "! ls '$p/bin' | grep -qv '^mdm-'"
done_testing
