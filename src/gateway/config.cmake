# idem_gateway_config: the gateway's configuration (TOML file, command line
# overrides, rendering). Included from src/gateway/CMakeLists.txt; kept in
# its own small library so `idem check-config` and the tests need no server.
find_package(tomlplusplus 3.3 REQUIRED)

add_library(idem_gateway_config ${CMAKE_CURRENT_LIST_DIR}/config.cc)
add_library(idem::gateway_config ALIAS idem_gateway_config)
target_include_directories(idem_gateway_config PUBLIC ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(idem_gateway_config PUBLIC idem::core idem::store_wrappers
                                          PRIVATE tomlplusplus::tomlplusplus)
