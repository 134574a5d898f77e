# Compile options every target of the project shares.
function(mdm_add_compile_options target)
	target_compile_options(${target} PRIVATE
		-Wall -Wextra -Wpedantic -Wstrict-prototypes -Wformat=2 -Wshadow
		-Wvla -Wwrite-strings -Wmissing-prototypes -fno-common)
	target_compile_definitions(${target} PRIVATE _POSIX_C_SOURCE=200809L _DEFAULT_SOURCE)
	if(MDM_WERROR)
		target_compile_options(${target} PRIVATE -Werror)
	endif()
endfunction()

if(MDM_SANITIZE)
	add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
	add_link_options(-fsanitize=address,undefined)
endif()
if(MDM_FUZZ)
	# Every object carries coverage so the fuzzers see into libmdm.
	add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
	add_link_options(-fsanitize=address,undefined)
endif()

# mdm_add_tool(NAME SOURCES...): a tool is main.c plus a library of its
# logic (cmd/NAME/*.c but main.c), so tests can link the logic directly.
function(mdm_add_tool name)
	set(srcs ${ARGN})
	list(FILTER srcs EXCLUDE REGEX "main\\.c$")
	string(REPLACE "-" "_" lib "${name}")
	add_library(${lib}_logic STATIC ${srcs})
	target_link_libraries(${lib}_logic PUBLIC mdm)
	target_include_directories(${lib}_logic PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
	mdm_add_compile_options(${lib}_logic)
	add_executable(${name} main.c)
	target_link_libraries(${name} PRIVATE ${lib}_logic)
	mdm_add_compile_options(${name})
	set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)
	install(TARGETS ${name} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endfunction()
