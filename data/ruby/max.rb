def max(a, b)
  a > b ? a : b
end
